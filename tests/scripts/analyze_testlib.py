"""Shared helpers of the `histoplan analyze` batch tests (test_analyze_concurrent, _resume,
_signals, _exit_status, _upsampling): the binary, the models, small synthetic slides, the checks
on an output folder and the schemas, and a pass/fail counter."""
import hashlib
import json
import os
import subprocess
import sys

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
ZOO = os.path.join(SRC, "models", "zoo")
MODEL = os.path.join(ZOO, "histoplan-default-densenet.onnx")
OTHER_MODEL = os.path.join(ZOO, "histoplan-demo-densenet.onnx")
CATEGORIES = {"unreadable", "unsupported", "no-mpp", "no-tissue", "model", "io", "interrupted"}

failures = 0


def check(cond, msg):
    global failures
    if cond:
        print("ok:", msg)
    else:
        failures += 1
        print("FAIL:", msg)
    return cond


def finish():
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


def run(*args, env=None, timeout=900):
    p = subprocess.run(["nice", "-n", "10", HP_BIN] + [str(a) for a in args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def synth(path, size, seed):
    rc, so, se = run("synth", "--out", path, "--size", f"{size}x{size}", "--seed", seed, "--overwrite")
    if rc != 0:
        print(se)
        raise SystemExit(f"synth {path} failed")
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_hash(path):
    """The key of a slide in batch-summary.json: the SHA-256 of its absolute path."""
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()


def slide_id(path):
    return sha256_file(path)[:12]


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def schema(name):
    with open(os.path.join(SRC, "schemas", name)) as fh:
        return json.load(fh)


def load_summary(out):
    with open(os.path.join(out, "batch-summary.json")) as fh:
        return json.load(fh)


def valid(doc, schema_name):
    """None when `doc` validates against the schema, else the error (jsonschema when present)."""
    try:
        import jsonschema
    except ImportError:
        return None
    try:
        jsonschema.validate(doc, schema(schema_name))
        return None
    except jsonschema.ValidationError as e:
        return str(e)[:300]


RESULT_FILES = {".histoplan-output", "findings.json", "run.json", "overlay.png", "mask.png", "uncertainty.png",
                "heatmap.tiff", "regions.geojson", "regions.xml", "tiles.csv", "tiles.geojson"}


def strays(out):
    """Files and folders in OUT that no finished run should leave: locks, partial or replaced
    folders, temporary files, and unexpected files inside the result folders."""
    bad = []
    for name in os.listdir(out):
        p = os.path.join(out, name)
        if name == "batch-summary.json":
            continue
        if not os.path.isdir(p) or name.endswith((".partial", ".replaced")) or ".reclaim-" in name:
            bad.append(name)
            continue
        for f in os.listdir(p):
            if f not in RESULT_FILES and not (f.startswith("heatmap_") and f.endswith(".png")):
                bad.append(f"{name}/{f}")
    return bad
