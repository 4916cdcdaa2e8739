"""Shared by the report tests (test_report_*.py): a real findings.json made by `histoplan synth`
and `histoplan analyze` in a temporary folder, case files, and running the command line.

Not a test itself (its name does not start with test_)."""
import copy
import json
import os
import shutil
import subprocess
import sys

BIN = os.environ.get("HP_BIN", "")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(SRC, "..", "shared"))
MODEL = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")
CMU = os.path.join(SHARED, "data", "real", "slides", "CMU-1-Small-Region.svs")
ACCESSION = "S26-0042"

# Identifiers that must never reach a file name, a log line or the audit log.
PATIENT = {
    "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-QX-778899"}],
    "name": "Quixley Zanthorpe",
    "birth_date": "1985-04-02",
    "sex": "female",
}


class Checks:
    """Counts checks; every check prints ok/FAIL so a failure says what broke."""

    def __init__(self):
        self.failures = 0
        self.count = 0

    def __call__(self, cond, msg):
        self.count += 1
        if cond:
            print("ok  ", msg)
        else:
            self.failures += 1
            print("FAIL", msg)
        return cond

    def exit(self):
        print(f"{self.count - self.failures}/{self.count} checks passed")
        sys.exit(1 if self.failures else 0)


def run(args, **kw):
    """Runs histoplan with `args`; returns (exit status, stdout + stderr)."""
    p = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    return p.returncode, p.stdout


def analyze(tmp, slide, out, accession=ACCESSION, extra=()):
    """Analyzes `slide` into `out`; returns the path of its findings.json."""
    args = ["analyze", slide, "--model", MODEL, "--out", out] + list(extra)
    if accession:
        args += ["--case", accession]
    rc, log = run(args)
    if rc != 0:
        raise RuntimeError(f"analyze {slide} failed ({rc}):\n{log}")
    for line in log.splitlines():
        if "output " in line:
            d = line.split("output ", 1)[1].strip().rstrip("/")
            return os.path.join(d, "findings.json")
    found = [os.path.join(r, "findings.json") for r, _, f in os.walk(out) if "findings.json" in f]
    return sorted(found, key=os.path.getmtime)[-1]


def synthetic_findings(tmp, seed=1401, size=6144, name="synth", accession=ACCESSION):
    """A findings.json of a generated slide (all four classes present at this size and seed)."""
    slide = os.path.join(tmp, f"{name}.tiff")
    rc, log = run(["synth", "--out", slide, "--size", f"{size}x{size}", "--seed", str(seed)])
    if rc != 0:
        raise RuntimeError(f"synth failed:\n{log}")
    return analyze(tmp, slide, os.path.join(tmp, f"analysis-{name}"), accession)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


def case_file(tmp, name="case.json", **fields):
    """A case file with the accession and whatever else is given."""
    obj = {"accession": ACCESSION}
    obj.update(fields)
    return write_json(os.path.join(tmp, name), obj)


def load(path):
    with open(path) as f:
        return json.load(f)


def build(case, findings, out, extra=()):
    """`histoplan report build`; returns (exit status, output)."""
    return run(["report", "build", case] + list(findings) + ["--out", out] + list(extra))


def variant(base_path, out_path, edit):
    """Writes a copy of findings `base_path` changed by `edit(doc)`, with its overlay reachable."""
    doc = copy.deepcopy(load(base_path))
    edit(doc)
    # The images beside the copy, as regular files: the report reads only regular files inside
    # the findings' folder, never through a symbolic link.
    src_dir = os.path.dirname(base_path)
    dst_dir = os.path.dirname(out_path)
    os.makedirs(dst_dir, exist_ok=True)
    for k, v in doc["outputs"].items():
        if isinstance(v, str) and v.endswith(".png") and os.path.exists(os.path.join(src_dir, v)) and \
                not os.path.exists(os.path.join(dst_dir, v)):
            shutil.copyfile(os.path.join(src_dir, v), os.path.join(dst_dir, v))
    return write_json(out_path, doc)
