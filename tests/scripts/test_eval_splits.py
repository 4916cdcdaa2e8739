"""`histoplan eval --split`:

- eva: on a fake BACH Part A folder of 400 .tif images (BACH's file names), the validation and
  train images are those eva selects: torchvision's make_dataset (what eva's BACH class calls)
  over the class folders, indexed by eva's ranges; an evaluation with --split eva covers exactly
  those images; a data set that is not BACH's 400 images is refused;
- kfold:K:SEED[:F]: the folds are the documented algorithm (stratified by label, SplitMix64
  Fisher-Yates) replayed in Python, balanced per class, fixed by the seed; F selects one fold;
  an evaluation over all folds reports per-fold figures that match its predictions.csv.
"""
import csv
import io
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
try:
    import numpy as np
    from torchvision.datasets import folder as tv_folder
    import eval_testlib as T
except ImportError as e:  # pragma: no cover
    print(f"skipped: numpy, torchvision or openslide not available ({e})")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


# kaiko-ai/eva, src/eva/vision/data/datasets/classification/bach.py (class BACH).
EVA_TRAIN = [(0, 41), (59, 60), (90, 139), (169, 240), (258, 260), (273, 345), (368, 400)]
EVA_VAL = [(41, 59), (60, 90), (139, 169), (240, 258), (260, 273), (345, 368)]
EVA_CLASS_TO_IDX = {"Benign": 0, "InSitu": 1, "Invasive": 2, "Normal": 3}


def listing(*args):
    rc, out = T.run("eval", *args, "--list")
    rows = list(csv.DictReader(io.StringIO(out))) if rc == 0 else []
    return rc, rows, out


def splitmix64(seed):
    state = seed & (2**64 - 1)
    while True:
        state = (state + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        yield z ^ (z >> 31)


def kfold_reference(items, k, seed):
    """items: [(name, label)] in data order -> {name: fold}, as eval/eval_split.h documents."""
    gen = splitmix64(seed)
    folds = {}
    for label in sorted({l for _, l in items}, key=lambda s: s.encode()):
        g = [n for n, l in items if l == label]
        for i in range(len(g) - 1, 0, -1):
            j = next(gen) % (i + 1)
            g[i], g[j] = g[j], g[i]
        for p, n in enumerate(g):
            folds[n] = p % k
    return folds


work = tempfile.mkdtemp(prefix="hp-eval-split-")
try:
    # 400 small images with BACH's names (100 per class), written from a few generated crops.
    crops = T.synth_crops(work, 11, 2, side_blocks=5)
    root = os.path.join(work, "ICIAR2018_BACH_Challenge")
    photos = os.path.join(root, "Photos")
    blobs = {}
    for cls in T.BACH_CLASSES:
        p = os.path.join(work, f"{cls}.tif")
        T.write_tiff(p, crops[cls][0])
        blobs[cls] = open(p, "rb").read()
    gt = []
    for cls in T.BACH_CLASSES:
        os.makedirs(os.path.join(photos, cls))
        for i in range(1, 101):
            name = f"{T.BACH_PREFIX[cls]}{i:03d}.tif"
            with open(os.path.join(photos, cls, name), "wb") as fh:
                fh.write(blobs[cls])
            gt.append(f"{name},{cls}")
    with open(os.path.join(photos, "microscopy_ground_truth.csv"), "w") as fh:
        fh.write("\n".join(gt) + "\n")

    samples = tv_folder.make_dataset(photos, EVA_CLASS_TO_IDX, extensions=(".tif"))
    names = [os.path.relpath(p, photos) for p, _ in samples]
    want_val = [names[i] for a, b in EVA_VAL for i in range(a, b)]
    want_train = [names[i] for a, b in EVA_TRAIN for i in range(a, b)]

    rc, rows, out = listing(root, "--split", "eva")
    check(rc == 0 and [r["image"] for r in rows] == names,
          f"--list gives the images in torchvision ImageFolder order ({len(rows)} rows)")
    got_val = [r["image"] for r in rows if r["selected"] == "1"]
    check(got_val == want_val and len(got_val) == 132, "--split eva selects eva's 132 validation images")
    rc, rows, out = listing(root, "--split", "eva:train")
    got_train = [r["image"] for r in rows if r["selected"] == "1"]
    check(rc == 0 and got_train == want_train and len(got_train) == 268,
          "--split eva:train selects eva's 268 training images")
    check(not set(got_train) & set(got_val), "train and validation are disjoint")

    out_dir = os.path.join(work, "o-eva")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--split", "eva", "--out", out_dir, "--bootstrap", 0)
    check(rc == 0, f"eval --split eva: exit 0 ({log.strip()[-160:]})")
    doc = json.load(open(os.path.join(out_dir, "metrics.json")))
    preds = T.read_predictions(os.path.join(out_dir, "predictions.csv"))
    check([p["image"] for p in preds] == want_val and doc["split"]["spec"] == "eva:val"
          and doc["split"]["images"] == 132 and doc["metrics"]["images"] == 132
          and "kaiko-ai/eva" in doc["split"]["definition"],
          "the evaluation covers exactly eva's validation images, and says whose split it is")

    # eva's ranges mean nothing on other data.
    os.remove(os.path.join(photos, "Normal", "n100.tif"))
    with open(os.path.join(photos, "microscopy_ground_truth.csv"), "w") as fh:
        fh.write("\n".join(g for g in gt if not g.startswith("n100")) + "\n")
    rc, rows, out = listing(root, "--split", "eva")
    check(rc == 1 and "400" in out and "399" in out, f"399 images: --split eva refused ({out.strip()[-150:]})")
    folders = os.path.join(work, "folders")
    shutil.copytree(os.path.join(photos, "Benign"), os.path.join(folders, "benign"))
    rc, rows, out = listing(folders, "--split", "eva")
    check(rc == 1 and "class-folders" in out, "class folders: --split eva refused")
    with open(os.path.join(photos, "Normal", "n100.tif"), "wb") as fh:
        fh.write(blobs["Normal"])
    with open(os.path.join(photos, "microscopy_ground_truth.csv"), "w") as fh:
        fh.write("\n".join(gt) + "\n")

    # k folds.
    rc, rows, out = listing(root, "--split", "kfold:5:7")
    items = [(r["image"], r["label"]) for r in rows]
    ref = kfold_reference(items, 5, 7)
    check(rc == 0 and all(int(r["fold"]) == ref[r["image"]] for r in rows) and all(r["selected"] == "1" for r in rows),
          "kfold:5:7: every image's fold is the documented algorithm's (replayed in Python)")
    per = {}
    for r in rows:
        per.setdefault((r["label"], r["fold"]), 0)
        per[(r["label"], r["fold"])] += 1
    check(set(per.values()) == {20} and len(per) == 20, "stratified: 20 images of each class in each fold")
    rc, rows2, _ = listing(root, "--split", "kfold:5:7")
    rc3, rows3, _ = listing(root, "--split", "kfold:5:8")
    check(rows2 == rows and [r["fold"] for r in rows3] != [r["fold"] for r in rows],
          "the same seed gives the same folds, another seed others")
    rc, rows4, _ = listing(root, "--split", "kfold:5:7:2")
    check([r["image"] for r in rows4 if r["selected"] == "1"] == [r["image"] for r in rows if r["fold"] == "2"],
          "kfold:5:7:2 selects fold 2 only")

    # Per-fold metrics of an evaluation over all folds (the 16-image layout).
    bach = os.path.join(work, "bach16")
    T.fake_bach(bach, work, per_class=3)
    out_k = os.path.join(work, "o-kfold")
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--split", "kfold:4:3", "--out", out_k, "--bootstrap", 0)
    doc = json.load(open(os.path.join(out_k, "metrics.json")))
    preds = T.read_predictions(os.path.join(out_k, "predictions.csv"))
    ok = rc == 0 and len(doc["folds"]) == 4 and doc["split"]["k"] == 4 and doc["split"]["seed"] == "3"
    for f in doc["folds"]:
        mine = [p for p in preds if p["fold"] == str(f["fold"])]
        acc = np.mean([p["truth"] == p["predicted"] for p in mine]) if mine else None
        ok &= f["images"] == len(mine) and (acc is None or abs(f["accuracy"] - acc) < 1e-12)
    check(ok, "kfold without a fold: per-fold images and accuracy match predictions.csv's fold column")
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--split", "kfold:4:3:1", "--out",
                    os.path.join(work, "o-kfold1"), "--bootstrap", 0)
    p1 = T.read_predictions(os.path.join(work, "o-kfold1", "predictions.csv"))
    check(rc == 0 and [p["image"] for p in p1] == [p["image"] for p in preds if p["fold"] == "1"],
          "kfold:4:3:1 evaluates fold 1's images only")
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--split", "kfold:4:3:4", "--out", os.path.join(work, "o-bad"))
    check(rc == 2 and "FOLD 0..K-1" in log, "a fold outside 0..K-1 is refused as bad usage")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
