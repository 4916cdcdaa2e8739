"""The committed default model (models/zoo/histoplan-default-densenet) on a held-out synthetic slide.

- the card validates against schemas/model-card.schema.json (when jsonschema is importable), says
  not_for_diagnosis, and its sha256 is the ONNX file's; `histoplan model info` loads the pair and
  prints the classes;
- a slide generated with `histoplan synth --seed 1301` (a seed train-default-model.py never uses:
  it trains on 1101-1103 and validates on 1201) is cut into tiles the way the training script
  cuts them (448x448 level-0 reads at 0.25 um/px, reduced 2x by area averaging to 224 at
  0.5 um/px; >= 50% tissue, >= 70% majority class), up to PER_CLASS tiles per class spread over
  the slide's clean tile corners, normalized as the card says, and run through
  `histoplan model run` (CPU backend): the recall of every class is at least MIN_RECALL;
- on a few of those tiles the CPU backend's logits equal the plain reference path's
  (`--backend cpu-reference`) within TOL relative to the largest logit.

These figures are on synthetic tiles only; they say nothing about real tissue.
Environment: HP_BIN (the histoplan binary), HP_SOURCE_DIR (the source tree; default: two folders
up). Exit 77 when numpy, PIL, openslide or torch are missing (torch is not used for inference: the
check is that the committed ONNX file, run by histoplan, classifies; the import only marks the
machine as one with the project's Python stack)."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import openslide
    import torch  # noqa: F401  (see the docstring)
    from PIL import Image
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipped: numpy, PIL, openslide or torch not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..")
NAME = "histoplan-default-densenet"
ONNX = os.path.join(SRC, "models", "zoo", NAME + ".onnx")
CARD = os.path.join(SRC, "models", "zoo", NAME + ".card.json")
SCHEMA = os.path.join(SRC, "schemas", "model-card.schema.json")

SEED = 1301          # never used in training (1101-1103) or validation (1201)
SIZE = 8192          # level-0 px at 0.25 um/px; all four classes appear at this seed
READ, TRUTH_SCALE = 448, 64
CELLS = READ // TRUTH_SCALE
PER_CLASS = 100
MIN_RECALL = 0.9
N_REF = 4            # tiles compared between the cpu and cpu-reference backends
TOL = 1e-4

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def run(*args):
    return subprocess.run([HP_BIN, *args], capture_output=True, text=True)


def clean_corners(mask):
    """Tile corners (mask pixels) whose 7x7 truth cell is >= 50% tissue with a >= 70% majority."""
    per = {c: [] for c in range(1, 5)}
    h, w = mask.shape
    for my in range(h - CELLS + 1):
        for mx in range(w - CELLS + 1):
            counts = np.bincount(mask[my:my + CELLS, mx:mx + CELLS].ravel(), minlength=5)
            tissue = counts[1:].sum()
            if tissue < 0.5 * CELLS * CELLS:
                continue
            c = int(np.argmax(counts[1:])) + 1
            if counts[c] >= 0.7 * tissue:
                per[c].append((mx, my))
    return per


def main():
    with open(CARD) as f:
        card = json.load(f)
    with open(ONNX, "rb") as f:
        data = f.read()
    check(card.get("sha256") == hashlib.sha256(data).hexdigest(), "card sha256 matches the ONNX file")
    check(len(data) < 3 * 1024 * 1024, f"ONNX file is small ({len(data)} bytes)")
    check(card.get("not_for_diagnosis") is True, "card: not_for_diagnosis")
    check(card.get("classes") == ["normal", "benign", "in_situ", "invasive"], "card: classes")
    check(card.get("input_size") == [224, 224] and card.get("mpp") == 0.5, "card: 224 px at 0.5 um/px")
    check("synthetic" in card.get("training_data", "").lower(), "card: training data says synthetic")
    try:
        import jsonschema
    except ImportError:
        print("note: jsonschema not importable; schema validation skipped")
    else:
        with open(SCHEMA) as f:
            schema = json.load(f)
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(card)]
        check(not errors, f"card validates against the schema {errors}")

    r = run("model", "info", ONNX)
    check(r.returncode == 0 and all(c in r.stdout for c in card["classes"]),
          f"histoplan model info loads the model and card and prints the classes ({r.stderr.strip()})")

    mean = np.array(card["normalization"]["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.array(card["normalization"]["std"], np.float32).reshape(1, 3, 1, 1)

    with tempfile.TemporaryDirectory() as tmp:
        stem = os.path.join(tmp, "held")
        r = subprocess.run(["nice", "-n", "10", HP_BIN, "synth", "--out", stem + ".tiff", "--size",
                            f"{SIZE}x{SIZE}", "--seed", str(SEED), "--mpp", "0.25"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"synth seed {SEED} ({r.stderr.strip()})")
        if r.returncode != 0:
            return
        mask = np.asarray(Image.open(stem + ".truth.png"))
        slide = openslide.OpenSlide(stem + ".tiff")
        per = clean_corners(mask)
        recalls = {}
        first = None
        for c in range(1, 5):
            name = card["classes"][c - 1]
            corners = per[c]
            check(len(corners) >= PER_CLASS // 2, f"{name}: {len(corners)} clean tile corners")
            if not corners:
                continue
            # Evenly spread over the class's corners (row-major), so every region contributes.
            pick = np.unique(np.linspace(0, len(corners) - 1, min(PER_CLASS, len(corners))).astype(int))
            tiles = np.stack([np.asarray(slide.read_region(
                (corners[k][0] * TRUTH_SCALE, corners[k][1] * TRUTH_SCALE), 0, (READ, READ))
                .convert("RGB").reduce(2), np.float32) for k in pick])
            x = ((tiles.transpose(0, 3, 1, 2) / 255.0 - mean) / std).astype(np.float32)
            xin, yout = os.path.join(tmp, f"x{c}.npy"), os.path.join(tmp, f"logits{c}.npy")
            np.save(xin, np.ascontiguousarray(x))
            r = run("model", "run", ONNX, "--input", xin, "--output", yout, "--threads", "2")
            check(r.returncode == 0, f"{name}: model run on {len(x)} tiles ({r.stderr.strip()})")
            if r.returncode != 0:
                continue
            logits = np.load(yout)
            check(logits.shape == (len(x), 4), f"{name}: logits shape {logits.shape}")
            recalls[name] = float((logits.argmax(1) == c - 1).mean())
            check(recalls[name] >= MIN_RECALL, f"{name}: recall {recalls[name]:.3f} >= {MIN_RECALL} "
                  f"(predictions {np.bincount(logits.argmax(1), minlength=4).tolist()})")
            if first is None:
                first = (x[:N_REF], logits[:N_REF])
        slide.close()
        print("recall per class on held-out synthetic tiles:",
              {k: round(v, 3) for k, v in recalls.items()})

        if first is not None:
            xin, yref = os.path.join(tmp, "xref.npy"), os.path.join(tmp, "ref.npy")
            np.save(xin, np.ascontiguousarray(first[0]))
            r = run("model", "run", ONNX, "--input", xin, "--output", yref,
                    "--backend", "cpu-reference")
            check(r.returncode == 0, f"cpu-reference run ({r.stderr.strip()})")
            if r.returncode == 0:
                ref = np.load(yref)
                err = float(np.abs(ref - first[1]).max() / max(np.abs(ref).max(), 1e-12))
                check(err <= TOL, f"cpu backend vs cpu-reference: max relative difference "
                      f"{err:.2e} <= {TOL}")


if __name__ == "__main__":
    main()
    print("failures:", failures)
    sys.exit(1 if failures else 0)
