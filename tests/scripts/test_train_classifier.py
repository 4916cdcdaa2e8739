"""scripts/train-classifier.py, a smoke run: a DenseNet-121 trained for two steps on the fake BACH
layout (small 64-pixel tiles, so it runs in seconds on a CPU), then:

- the ONNX file loads in `histoplan model info` and `histoplan model run`, and its outputs on a
  random tensor agree with PyTorch's for the same weights (the exported best state);
- the card validates against schemas/model-card.schema.json, names the classes in output order,
  the input size, MPP, normalization and the file's SHA-256, and carries the metrics of
  `histoplan eval` on the validation images (the fold the split holds out, as eval --list says);
- --resume continues from the checkpoint (the step count goes on, it does not restart);
- an unknown architecture and a k-fold split without a fold are refused.
"""
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
try:
    import jsonschema
    import numpy as np
    import torch
    import torchvision
    import eval_testlib as T
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema, numpy, torch, torchvision or openslide not available ({e})")
    sys.exit(77)

failures = 0
PY = os.environ.get("HP_PYTHON", "/usr/bin/python3")
SCRIPT = os.path.join(T.SRC, "scripts", "train-classifier.py")


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def train(*args):
    env = dict(os.environ, HP_BIN=T.HP_BIN)
    p = subprocess.run(["nice", "-n", "19", PY, SCRIPT, *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=1200)
    return p.returncode, p.stdout + p.stderr


with open(os.path.join(T.SRC, "schemas", "model-card.schema.json")) as fh:
    SCHEMA = json.load(fh)
torch.manual_seed(0)
work = tempfile.mkdtemp(prefix="hp-train-")
try:
    data = os.path.join(work, "bach")
    T.fake_bach(data, work, per_class=2)
    out = os.path.join(work, "model")
    common = ["--out", out, "--arch", "densenet121", "--split", "kfold:3:1:0", "--tile", 64,
              "--batch", 4, "--patches-per-image", 1, "--bootstrap", 50, "--name", "smoke"]
    rc, log = train(data, *common, "--max-steps", 2, "--epochs", 1)
    check(rc == 0, f"two training steps, export and evaluation: exit 0 ({log.strip()[-300:]})")
    onnx = os.path.join(out, "smoke.onnx")
    card_path = os.path.join(out, "smoke.card.json")
    card = json.load(open(card_path))
    errs = list(jsonschema.validators.validator_for(SCHEMA)(SCHEMA).iter_errors(card))
    check(not errs, "the card validates against schemas/model-card.schema.json"
          + (f" ({errs[0].message})" if errs else ""))
    check(card["classes"] == ["normal", "benign", "in_situ", "invasive"] and card["input_size"] == [64, 64]
          and card["mpp"] == 0.5 and card["sha256"] == hashlib.sha256(open(onnx, "rb").read()).hexdigest()
          and card["not_for_diagnosis"] is True,
          "card: classes in output order, input size, MPP, the ONNX file's SHA-256, not for diagnosis")
    p = subprocess.run([T.HP_BIN, "eval", data, "--list", "--split", "kfold:3:1:0"], capture_output=True,
                       text=True)
    val = [r for r in csv.DictReader(io.StringIO(p.stdout)) if r["selected"] == "1"]
    ev = json.load(open(os.path.join(out, "eval-val", "metrics.json")))
    m = card["metrics"]
    check(m["images"] == len(val) == ev["metrics"]["images"] and m["split"] == "kfold:3:1:0"
          and m["accuracy"]["value"] == ev["metrics"]["accuracy"]["value"]
          and m["balanced_accuracy"]["ci95"] == ev["metrics"]["balanced_accuracy"]["ci95"],
          f"card metrics are histoplan eval's on the {len(val)} held-out images")
    check("kfold:3:1:0" in card["training_data"] and card["x-training"]["arch"] == "densenet121",
          "card: training data and split recorded")

    rc, log = T.run("model", "info", onnx)
    check(rc == 0 and "classes: normal benign in_situ invasive" in log, "histoplan model info loads it")
    # The same weights in PyTorch: the best state the export took.
    ck = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu")
    net = torchvision.models.densenet121(weights=None, num_classes=4)
    net.load_state_dict(ck["state"]["best_state"])
    net.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        ref = net(x).numpy()
    xin, yout = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
    np.save(xin, x.numpy())
    rc, log = T.run("model", "run", onnx, "--input", xin, "--output", yout)
    got = np.load(yout) if rc == 0 else None
    err = float(np.abs(got - ref).max() / max(1e-6, np.abs(ref).max())) if got is not None else None
    check(rc == 0 and got.shape == ref.shape and err < 1e-4,
          f"histoplan model run agrees with PyTorch (max relative difference {err})")
    img = os.path.join(data, "Photos", "Benign", "b002.tif")
    # The fake BACH image is larger than the model's input: model run tiles it at the card's MPP.
    rc, log = T.run("model", "run", onnx, "--input", img, "--mpp", "0.5")
    check(rc == 0 and "in_situ" in log,
          f"histoplan model run classifies an image with the card's classes ({log.strip()[-300:]})")

    # Resume: the step count continues.
    rc, log = train(data, *common, "--max-steps", 4, "--epochs", 2, "--resume")
    tlog = json.load(open(os.path.join(out, "training.json")))["log"]
    check(rc == 0 and "resumed at epoch 1, step 2" in log and [e["step"] for e in tlog] == [2, 4],
          f"--resume continues at step 2 and ends at 4 ({[e['step'] for e in tlog]})")
    card2 = json.load(open(card_path))
    check(card2["x-training"]["steps"] == 4 and card2["sha256"] == hashlib.sha256(open(onnx, "rb").read()).hexdigest(),
          "the new export and its card")

    rc, log = train(data, "--out", os.path.join(work, "x"), "--arch", "nosuchnet", "--max-steps", 1)
    check(rc != 0 and "nosuchnet" in log, "an unknown architecture is refused by name")
    rc, log = train(data, "--out", os.path.join(work, "x"), "--split", "kfold:3:1", "--max-steps", 1)
    check(rc != 0 and "FOLD" in log, "a k-fold split without the fold to validate on is refused")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
