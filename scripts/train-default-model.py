#!/usr/bin/python3
"""Trains histoplan's default model on synthetic tiles from `histoplan synth`. NOT a diagnostic model.

The model is the small DenseNet-BC of scripts/make-demo-model.py (imported from there, not copied),
trained on tiles that histoplan's procedural generator makes: H&E-like breast tissue with regions of
four classes (normal, benign, in situ, invasive) and a ground-truth label mask. No patient data is
involved, and the model learns the generator's textures, not pathology: it exists so the pipeline
can be demonstrated end to end with a model whose class map means something on generated slides.

Data (all seeds fixed and disjoint from the seeds the tests use: 1, 3, 4, 7 in test_synth_slide.py,
1301 in tests/scripts/test_default_model.py):
  training slides   seeds 1101, 1102, 1103   (12288 x 12288 px at 0.25 um/px each)
  validation slide  seed 1201                (16384 x 16384 px at 0.25 um/px, held out)
Tiles are 224 x 224 at 0.5 um/px: a 448 x 448 level-0 read (0.25 um/px) reduced 2x by area
averaging (PIL Image.reduce(2), a 2x2 box filter), the resampling the pipeline uses. Tile corners
are multiples of 64 level-0 px, so each tile covers exactly 7 x 7 pixels of the 1/64 truth mask;
a tile is kept when >= 50% of those are tissue and its majority class holds >= 70% of the tissue
ones, and is labelled by that majority class. Training tiles are drawn at random corners
(overlapping), the same number per class; validation tiles lie on the pipeline's grid (origin 0,
step 448 px) of the held-out slide.

Training: seeded and deterministic on the CPU (torch.manual_seed, use_deterministic_algorithms,
2 threads; a rerun on the same machine and torch gives the same ONNX bytes), AdamW with a one-cycle
schedule for a fixed number of steps, augmentation by flips, 90-degree rotations and mild colour
jitter (per-channel gain and offset). About 3-8 minutes on 2 shared cores, depending on their load
(the 150 training steps took 97-276 s). --max-minutes is a safety cap: hitting it stops training
early, and the card then says how many steps ran.

Out-of-domain detector and calibration (after training, on the trained model):
  calibration slide seed 1202 (8192 x 8192 px at 0.25 um/px, held out from training and validation)
  detector   a Mahalanobis score on the penultimate features (the global-average-pooled features
             the classifier reads, ONNX value named in the detector file): mean and a shrunk
             covariance's inverse fitted on the training tiles; threshold at the 99th percentile
             of the calibration slide's tile scores, so about 1% of in-domain tiles exceed it.
             Its false-positive rate is measured on the validation slide's tiles (held out), its
             detection rate on the real H&E sets in ../shared/data/real when they are present.
  temperature  one scalar T fitted on the calibration slide's tiles (negative log-likelihood);
             the expected calibration error (15 bins) before and after is measured on the
             validation slide's tiles and goes into the card.

Writes, into --out (default models/zoo beside this script):
  histoplan-default-densenet.onnx       opset 13, input "input" [N,3,224,224], output "logits" [N,4]
  histoplan-default-densenet.ood.json   the out-of-domain detector's parameters (its SHA-256 is in
                                        the card)
  histoplan-default-densenet.card.json  the model card (schemas/model-card.schema.json)

Run with Debian's interpreter, from a build that has the histoplan binary:
  nice -n 10 /usr/bin/python3 scripts/train-default-model.py [--bin build/histoplan]
"""

import argparse
import csv
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import openslide
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_demo():
    """scripts/make-demo-model.py as a module (its file name is not an identifier)."""
    spec = importlib.util.spec_from_file_location("make_demo_model",
                                                  os.path.join(HERE, "make-demo-model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


demo = _load_demo()

NAME = "histoplan-default-densenet"
VERSION = "1.0.0"
CLASSES = demo.CLASSES            # normal, benign, in_situ, invasive; truth mask values 1..4
INPUT = demo.INPUT                # 224
MPP = 0.5                         # tile resolution, um/px
SLIDE_MPP = 0.25                  # generated level 0
READ = 448                        # level-0 read per tile (224 at 0.5 um/px)
TRUTH_SCALE = 64                  # level-0 px per truth-mask pixel (histoplan synth's default)
CELLS = READ // TRUTH_SCALE       # 7 mask pixels per tile side
MIN_TISSUE = 0.5
MIN_PURITY = 0.7

TRAIN_SEEDS = (1101, 1102, 1103)
TRAIN_SIZE = 12288
VAL_SEED = 1201
VAL_SIZE = 16384
CAL_SEED = 1202                   # calibration slide: temperature and detector threshold
CAL_SIZE = 8192
OOD_PERCENTILE = 99.0             # detector threshold: this percentile of in-domain tile scores
OOD_SLIDE_FRACTION = 0.5          # a slide is out of domain when this share of its tiles exceed it
OOD_SHRINK = 0.05                 # covariance shrinkage towards its mean variance (stable inverse)
ECE_BINS = 15
REAL_DIR = os.path.join(HERE, "..", "..", "shared", "data", "real")
TILES_PER_CLASS = 640             # training tiles per class (balanced)
SEED = 20261128                   # torch / numpy seed for sampling, init, order and augmentation
STEPS = 150
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-4


def log(*a):
    print(*a, flush=True)


def synth(hp_bin, out, size, seed):
    t = time.time()
    subprocess.run(["nice", "-n", "10", hp_bin, "synth", "--out", out, "--size", f"{size}x{size}",
                    "--seed", str(seed), "--mpp", str(SLIDE_MPP), "--threads", "2", "--overwrite"],
                   check=True, capture_output=True)
    log(f"  synth seed {seed} {size}x{size}: {time.time() - t:.1f} s")


def tile_label(mask, mx, my):
    """Label (1..4) of the tile whose corner is mask pixel (mx, my), or 0 if it fails the
    tissue/purity rules; also the tissue fraction."""
    cell = mask[my:my + CELLS, mx:mx + CELLS]
    counts = np.bincount(cell.ravel(), minlength=5)
    tissue = counts[1:].sum()
    if tissue < MIN_TISSUE * cell.size:
        return 0
    c = int(np.argmax(counts[1:])) + 1
    return c if counts[c] >= MIN_PURITY * tissue else 0


def read_tile(slide, mx, my):
    """224x224 RGB uint8 at 0.5 um/px: a 448x448 level-0 read reduced 2x by 2x2 area averaging."""
    img = slide.read_region((mx * TRUTH_SCALE, my * TRUTH_SCALE), 0, (READ, READ)).convert("RGB")
    return np.asarray(img.reduce(2), dtype=np.uint8)


def candidates(mask, step):
    """All tile corners (mask pixels, multiples of `step`) with a clean label, per class."""
    per = {c: [] for c in range(1, 5)}
    h, w = mask.shape
    for my in range(0, h - CELLS + 1, step):
        for mx in range(0, w - CELLS + 1, step):
            c = tile_label(mask, mx, my)
            if c:
                per[c].append((mx, my))
    return per


def train_tiles(work, rng):
    """TILES_PER_CLASS tiles per class drawn from the training slides; uint8 N,224,224,3 and labels."""
    pool = {c: [] for c in range(1, 5)}
    slides = []
    for i, seed in enumerate(TRAIN_SEEDS):
        stem = os.path.join(work, f"train{seed}")
        mask = np.asarray(Image.open(stem + ".truth.png"))
        slides.append(openslide.OpenSlide(stem + ".tiff"))
        for c, lst in candidates(mask, 1).items():
            pool[c] += [(i, mx, my) for mx, my in lst]
    xs, ys, per_class = [], [], {}
    for c in range(1, 5):
        lst = pool[c]
        pick = rng.choice(len(lst), size=min(TILES_PER_CLASS, len(lst)), replace=False)
        per_class[CLASSES[c - 1]] = int(len(pick))
        for k in sorted(pick):
            i, mx, my = lst[k]
            xs.append(read_tile(slides[i], mx, my))
            ys.append(c - 1)
    for s in slides:
        s.close()
    return np.stack(xs), np.array(ys, dtype=np.int64), per_class, {CLASSES[c - 1]: len(pool[c]) for c in pool}


def val_tiles(stem):
    """Every clean tile on the pipeline's grid (origin 0, step 448 px) of the held-out slide."""
    mask = np.asarray(Image.open(stem + ".truth.png"))
    slide = openslide.OpenSlide(stem + ".tiff")
    xs, ys = [], []
    for c, lst in candidates(mask, CELLS).items():
        for mx, my in lst:
            xs.append(read_tile(slide, mx, my))
            ys.append(c - 1)
    slide.close()
    return np.stack(xs), np.array(ys, dtype=np.int64)


def grid_tiles(stem):
    """Every tile of the pipeline's grid with >= 50% tissue, labelled by its majority class with no
    purity rule: the mixed boundary tiles a slide's analysis meets too, where the model does err,
    so a temperature fitted on them is not driven to zero by tiles it never gets wrong."""
    mask = np.asarray(Image.open(stem + ".truth.png"))
    slide = openslide.OpenSlide(stem + ".tiff")
    xs, ys = [], []
    h, w = mask.shape
    for my in range(0, h - CELLS + 1, CELLS):
        for mx in range(0, w - CELLS + 1, CELLS):
            counts = np.bincount(mask[my:my + CELLS, mx:mx + CELLS].ravel(), minlength=5)
            if counts[1:].sum() < MIN_TISSUE * CELLS * CELLS:
                continue
            xs.append(read_tile(slide, mx, my))
            ys.append(int(np.argmax(counts[1:])))
    slide.close()
    return np.stack(xs), np.array(ys, dtype=np.int64)


def to_float(x_uint8):
    """uint8 N,H,W,3 -> float N,3,H,W on 0..1."""
    return torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float().div_(255.0)


def augment(x, gen):
    """Flips, 90-degree rotations, mild colour jitter; x float N,3,H,W on 0..1 (modified copy)."""
    n = x.shape[0]
    out = torch.empty_like(x)
    ops = torch.randint(0, 8, (n,), generator=gen)
    for i in range(n):
        t = x[i]
        k = int(ops[i]) % 4
        if k:
            t = torch.rot90(t, k, (1, 2))
        if int(ops[i]) >= 4:
            t = torch.flip(t, (2,))
        out[i] = t
    gain = 1.0 + (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.12    # +-6% per channel
    bias = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.06          # +-3% brightness
    return (out * gain + bias).clamp_(0.0, 1.0)


def predict(model, x_uint8, mean, std, batch=64):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x_uint8), batch):
            xb = (to_float(x_uint8[i:i + batch]) - mean) / std
            out.append(model(xb.contiguous(memory_format=torch.channels_last)))
    return torch.cat(out)


def metrics_of(pred, y):
    acc = float((pred == y).float().mean())
    recall = {CLASSES[c]: round(float((pred[y == c] == c).float().mean()), 4) for c in range(4)}
    conf = [[int(((y == a) & (pred == b)).sum()) for b in range(4)] for a in range(4)]
    return round(acc, 4), recall, conf


def features_and_logits(model, x_uint8, mean, std, batch=64):
    """Penultimate features (global-average-pooled, what the classifier reads) and logits."""
    model.eval()
    feats, logits = [], []
    with torch.no_grad():
        for i in range(0, len(x_uint8), batch):
            xb = (to_float(x_uint8[i:i + batch]) - mean) / std
            f = torch.flatten(F.adaptive_avg_pool2d(model.features(xb), (1, 1)), 1)
            feats.append(f)
            logits.append(model.classifier(f))
    return torch.cat(feats).double().numpy(), torch.cat(logits).double()


def fit_detector(feats):
    """Mean and precision (inverse of a covariance shrunk towards its mean variance, so the
    inverse is stable for features that barely vary on the training tiles)."""
    mu = feats.mean(0)
    cov = np.cov(feats - mu, rowvar=False)
    d = cov.shape[0]
    cov = (1 - OOD_SHRINK) * cov + OOD_SHRINK * (np.trace(cov) / d) * np.eye(d)
    return mu, np.linalg.inv(cov)


def mahalanobis(feats, mu, prec):
    """Squared Mahalanobis distance of each row; the C detector computes the same in float64."""
    z = feats - mu
    return np.einsum("ij,jk,ik->i", z, prec, z)


def fit_temperature(logits, y):
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T): a 1-D search on
    log T (coarse grid, then golden section), deterministic and enough for one scalar."""
    yt = torch.from_numpy(y)

    def nll(lt):
        return float(F.cross_entropy(logits / float(np.exp(lt)), yt))
    grid = np.linspace(np.log(0.01), np.log(100.0), 161)
    k = int(np.argmin([nll(g) for g in grid]))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    r = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - r * (b - a), a + r * (b - a)
        if nll(c) < nll(d):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def ece(logits, y, temperature=1.0):
    """Expected calibration error of the top-class probability, ECE_BINS equal-width bins."""
    p = torch.softmax(logits / temperature, 1).numpy()
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == y).astype(np.float64)
    total = 0.0
    for i in range(ECE_BINS):
        lo, hi = i / ECE_BINS, (i + 1) / ECE_BINS
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def is_tissue(tile):
    """A crude tissue test for the real sets (the pipeline's mask is not at hand here): at least
    half the pixels neither white background nor black."""
    t = tile.astype(np.int32)
    sat = t.max(2) - t.min(2)
    tissue = (sat > 20) & (t.min(2) < 220) & (t.max(2) > 30)
    return tissue.mean() >= MIN_TISSUE


def real_tiles(real_dir):
    """Real H&E tiles, 224 x 224 on a grid, tissue only: {set name: uint8 N,224,224,3}. The Aperio
    slide is read at level 0 (0.499 um/px, the model's 0.5); the patches at their own pixel size,
    as `histoplan analyze --mpp 0.5` would read them."""
    sets = {}
    svs = os.path.join(real_dir, "slides", "CMU-1-Small-Region.svs")
    if os.path.exists(svs):
        s = openslide.OpenSlide(svs)
        w, h = s.dimensions
        img = np.asarray(s.read_region((0, 0), 0, (w, h)).convert("RGB"))
        s.close()
        tiles = [img[y:y + INPUT, x:x + INPUT] for y in range(0, h - INPUT + 1, INPUT)
                 for x in range(0, w - INPUT + 1, INPUT)]
        tiles = [t for t in tiles if is_tissue(t)]
        if tiles:
            sets["slides/CMU-1-Small-Region.svs"] = np.stack(tiles)
    pdir = os.path.join(real_dir, "patches")
    tiles = []
    for name in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
        if not name.lower().endswith((".png", ".tif", ".tiff")):
            continue
        img = np.asarray(Image.open(os.path.join(pdir, name)).convert("RGB"))
        h, w = img.shape[:2]
        tiles += [img[y:y + INPUT, x:x + INPUT] for y in range(0, h - INPUT + 1, INPUT)
                  for x in range(0, w - INPUT + 1, INPUT)]
    tiles = [t for t in tiles if is_tissue(t)]
    if tiles:
        sets["patches/ (every 224 x 224 tissue tile of the patches of at least 224 px)"] = np.stack(tiles)
    return sets


def feature_value_name(onnx_bytes):
    """The ONNX value the classifier (the last Gemm) reads: the penultimate features."""
    import onnx
    g = onnx.load_from_string(onnx_bytes).graph
    gemm = [n for n in g.node if n.op_type == "Gemm"]
    return gemm[-1].input[0]


def detector_bytes(feature, mu, prec, threshold):
    det = {"format": "histoplan-ood/1", "method": "mahalanobis", "feature": feature,
           "dim": int(len(mu)), "threshold": threshold, "slide_fraction": OOD_SLIDE_FRACTION,
           "mean": [float(v) for v in mu], "precision": [float(v) for v in np.asarray(prec).ravel()]}
    return (json.dumps(det, separators=(",", ":")) + "\n").encode()


def analyze_rows(hp_bin, model, slide, out, extra=()):
    """`histoplan analyze` of one slide; the rows of its tiles.csv (one per analysed tile, with
    the class probabilities and the out-of-domain score the pipeline computed)."""
    subprocess.run(["nice", "-n", "10", hp_bin, "analyze", slide, "--model", model, "--out", out,
                    "--overwrite", "--threads", "2"] + list(extra), check=True, capture_output=True)
    found = glob.glob(os.path.join(out, "*", "tiles.csv"))
    with open(found[0]) as f:
        return list(csv.DictReader(f))


def rows_logp_labels(rows, stem):
    """Log-probabilities (a temperature scales them as it scales logits: the shift cancels) and
    truth labels (majority class of the tile's truth-mask cells, >= 50% tissue) of the rows."""
    mask = np.asarray(Image.open(stem + ".truth.png"))
    lp, ys = [], []
    for r in rows:
        mx, my = int(round(float(r["x"]))) // TRUTH_SCALE, int(round(float(r["y"]))) // TRUTH_SCALE
        counts = np.bincount(mask[my:my + CELLS, mx:mx + CELLS].ravel(), minlength=5)
        if counts[1:].sum() < MIN_TISSUE * CELLS * CELLS:
            continue
        lp.append([np.log(max(float(r["prob_" + c]), 1e-12)) for c in CLASSES])
        ys.append(int(np.argmax(counts[1:])))
    return torch.tensor(lp, dtype=torch.float64), np.array(ys, dtype=np.int64)


def calibrate_with_pipeline(args, work, onnx_bytes, mean, std, mu, prec, feature):
    """Threshold, temperature and rates measured through `histoplan analyze`, the code users run:
    the model with a provisional detector goes into a scratch folder, the held-out calibration
    slide sets the threshold (OOD_PERCENTILE of its tile scores) and the temperature (negative
    log-likelihood of its tiles' truth labels), the held-out validation slide gives the in-domain
    false-positive rate and the ECE before and after, the real H&E sets the detection rates."""
    scratch = os.path.join(work, "calibration")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    model = os.path.join(scratch, NAME + ".onnx")
    with open(model, "wb") as f:
        f.write(onnx_bytes)
    provisional = detector_bytes(feature, mu, prec, 1.0)
    with open(os.path.join(scratch, NAME + ".ood.json"), "wb") as f:
        f.write(provisional)
    with open(os.path.join(scratch, NAME + ".card.json"), "w") as f:
        json.dump({"name": NAME, "classes": CLASSES, "input_size": [INPUT, INPUT],
                   "normalization": {"mean": mean, "std": std}, "mpp": MPP,
                   "ood_detector": {"method": "mahalanobis", "file": NAME + ".ood.json",
                                    "sha256": hashlib.sha256(provisional).hexdigest()}}, f)
    cstem = os.path.join(work, f"cal{CAL_SEED}")
    vstem = os.path.join(work, f"val{VAL_SEED}")
    crows = analyze_rows(args.bin, model, cstem + ".tiff", os.path.join(scratch, "cal"))
    vrows = analyze_rows(args.bin, model, vstem + ".tiff", os.path.join(scratch, "val"))
    thr = round(float(np.percentile([float(r["ood_score"]) for r in crows], OOD_PERCENTILE)), 4)
    fpr = float(np.mean([float(r["ood_score"]) > thr for r in vrows]))
    clp, cy = rows_logp_labels(crows, cstem)
    vlp, vy = rows_logp_labels(vrows, vstem)
    temperature = round(fit_temperature(clp, cy), 4)
    rates = {"in_domain_false_positive_rate": round(fpr, 4),
             "in_domain_test_set": (f"every analysed tile ({len(vrows)}) of the held-out validation "
                                    f"slide (seed {VAL_SEED}) through histoplan analyze"),
             "detection_rate": {}}
    svs = os.path.join(args.real_dir, "slides", "CMU-1-Small-Region.svs")
    if os.path.exists(svs):
        rows = analyze_rows(args.bin, model, svs, os.path.join(scratch, "cmu"))
        rates["detection_rate"]["slides/CMU-1-Small-Region.svs"] = {
            "tiles": len(rows), "rate": round(float(np.mean([float(r["ood_score"]) > thr for r in rows])), 4)}
    pdir = os.path.join(args.real_dir, "patches")
    beyond, total = 0, 0
    for name in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
        if not name.lower().endswith((".png", ".tif", ".tiff")):
            continue
        try:
            rows = analyze_rows(args.bin, model, os.path.join(pdir, name),
                                os.path.join(scratch, "p-" + name), ["--mpp", "0.5"])
        except subprocess.CalledProcessError:
            continue  # smaller than one tile, or no tissue
        beyond += sum(float(r["ood_score"]) > thr for r in rows)
        total += len(rows)
    if total:
        rates["detection_rate"]["patches/ (every analysed tile, read with --mpp 0.5)"] = {
            "tiles": total, "rate": round(beyond / total, 4)}
    log(f"  threshold {thr}, in-domain FPR {fpr:.4f} ({len(vrows)} tiles), detection "
        f"{rates['detection_rate']}; temperature {temperature}, ECE {ece(vlp, vy):.4f} -> "
        f"{ece(vlp, vy, temperature):.4f}")
    shutil.rmtree(scratch, ignore_errors=True)
    return {"ood_bytes": detector_bytes(feature, mu, prec, thr),
            "info": {"n_cal": len(cy), "n_cal_scored": len(crows), "n_val_grid": len(vy),
                     "ood_threshold": thr, "ood_rates": rates, "ood_dim": int(len(mu)),
                     "ood_feature": feature, "temperature": temperature,
                     "ece_before": round(ece(vlp, vy), 4),
                     "ece_after": round(ece(vlp, vy, temperature), 4)}}


def recalibrate(args):
    """--recalibrate: the detector's threshold, the temperature and the rates again, for the model
    already in --out (its weights, and the detector's mean and precision, unchanged)."""
    work = args.work or tempfile.mkdtemp(prefix="hp-cal-")
    os.makedirs(work, exist_ok=True)
    for seed, size, stem in ((CAL_SEED, CAL_SIZE, f"cal{CAL_SEED}"), (VAL_SEED, VAL_SIZE, f"val{VAL_SEED}")):
        if not os.path.exists(os.path.join(work, stem + ".truth.json")):
            synth(args.bin, os.path.join(work, stem + ".tiff"), size, seed)
    card_path = os.path.join(args.out, NAME + ".card.json")
    with open(card_path) as f:
        c = json.load(f)
    with open(os.path.join(args.out, NAME + ".onnx"), "rb") as f:
        data = f.read()
    with open(os.path.join(args.out, NAME + ".ood.json")) as f:
        old = json.load(f)
    mu = np.array(old["mean"])
    prec = np.array(old["precision"]).reshape(old["dim"], old["dim"])
    cal = calibrate_with_pipeline(args, work, data, c["normalization"]["mean"], c["normalization"]["std"],
                                  mu, prec, old["feature"])
    info = {"n_train": sum(c["x-training"].get("tiles_per_class", {}).values()) or 2560, **cal["info"],
            "ood_sha": hashlib.sha256(cal["ood_bytes"]).hexdigest()}
    fresh = card(c["sha256"], 0, c["normalization"]["mean"], c["normalization"]["std"],
                 {**info, "n_val": c["metrics"]["tiles"], "train_per_class": {}, "val_per_class": {},
                  "val_acc": 0, "val_recall": {}, "val_conf": [], "steps": 0})
    for key in ("domain", "ood_detector", "calibration"):
        c[key] = fresh[key]
    for path, payload in ((os.path.join(args.out, NAME + ".ood.json"), cal["ood_bytes"]),
                          (card_path, (json.dumps(c, indent=2) + "\n").encode())):
        with open(path + ".tmp", "wb") as f:
            f.write(payload)
        os.replace(path + ".tmp", path)
    log(f"{card_path}: domain, ood_detector and calibration rewritten")


def card(sha, n_params, mean, std, info):
    seeds = ", ".join(str(s) for s in TRAIN_SEEDS)
    return {
        "$schema": "../../schemas/model-card.schema.json",
        "name": NAME,
        "version": VERSION,
        "classes": CLASSES,
        "category_map": dict(zip(CLASSES, ["normal", "benign", "in-situ", "invasive"])),
        "input_size": [INPUT, INPUT],
        "normalization": {"mean": mean, "std": std},
        "mpp": MPP,
        "sha256": sha,
        "training_data": (
            f"Synthetic tiles only, from histoplan's procedural H&E-like tissue generator "
            f"(histoplan synth): {info['n_train']} tiles of 224x224 px at 0.5 um/px "
            f"({', '.join(f'{k} {v}' for k, v in info['train_per_class'].items())}) cut from "
            f"three {TRAIN_SIZE}x{TRAIN_SIZE} px slides generated with seeds {seeds} at 0.25 um/px, "
            f"labelled by the generator's ground-truth mask (majority class >= 70% of the tissue, "
            f"tissue >= 50% of the tile). No patient data and no real tissue of any kind."),
        "intended_use": (
            "Demonstrates the histoplan pipeline end to end (tiling, inference, class maps, "
            "heatmaps, reports) on slides made by histoplan synth. It has only ever seen "
            "procedurally generated tissue, so on real slides its outputs are meaningless. It is "
            "NOT a diagnostic model, is not validated on real tissue, and must not be used for "
            "diagnosis, screening, triage, research conclusions about tissue or any clinical "
            "decision."),
        "metrics": {
            "note": ("Measured on synthetic data only (tiles of a held-out histoplan synth slide); "
                     "these figures say nothing about performance on real tissue."),
            "test_set": (f"held-out synthetic slide, seed {VAL_SEED}, {VAL_SIZE}x{VAL_SIZE} px at "
                         f"0.25 um/px: every tile of the pipeline's grid (224 px at 0.5 um/px) with "
                         f">= 50% tissue and a >= 70% majority class"),
            "tiles": info["n_val"],
            "tiles_per_class": info["val_per_class"],
            "accuracy": info["val_acc"],
            "recall": info["val_recall"],
            "confusion_matrix": {"rows": "truth", "columns": "prediction", "order": CLASSES,
                                 "counts": info["val_conf"]},
        },
        "domain": {
            "tissue": "synthetic H&E-like breast tissue made by histoplan synth; no real tissue",
            "stain": "H&E as histoplan synth renders it",
            "mpp_range": [0.2, 0.55],
            "note": ("Valid only for slides made by histoplan synth, scanned (generated) at 0.2 to "
                     "0.55 um/px and read at 0.5 um/px. Any real slide, of any organ or stain, is "
                     "outside this domain; the out-of-domain detector below checks each slide."),
        },
        "ood_detector": {
            "method": "mahalanobis",
            "file": NAME + ".ood.json",
            "sha256": info["ood_sha"],
            "features": ("penultimate: the global-average-pooled features the classifier reads "
                         f"(ONNX value {info['ood_feature']}, {info['ood_dim']} values per tile)"),
            "fitted_on": (f"the {info['n_train']} training tiles (mean and a covariance shrunk by "
                          f"{OOD_SHRINK} towards its mean variance)"),
            "threshold": info["ood_threshold"],
            "threshold_rule": (f"the {OOD_PERCENTILE:g}th percentile of the tile scores that "
                               f"histoplan analyze computes on the {info['n_cal_scored']} analysed "
                               f"tiles of the held-out calibration slide (seed {CAL_SEED}, "
                               f"{CAL_SIZE}x{CAL_SIZE} px at 0.25 um/px)"),
            "target_false_positive_rate": round(1 - OOD_PERCENTILE / 100, 4),
            "slide_fraction": OOD_SLIDE_FRACTION,
            "rates": info["ood_rates"],
        },
        "calibration": {
            "method": "temperature",
            "temperature": info["temperature"],
            "fitted_on": (f"the {info['n_cal']} tiles histoplan analyze classified on the held-out "
                          f"calibration slide (seed {CAL_SEED}) with >= 50% tissue in the truth "
                          f"mask, labelled by its majority class (boundary tiles included), by "
                          f"negative log-likelihood"),
            "reliability": {
                "measured_on": (f"the {info['n_val_grid']} tiles histoplan analyze classified on the "
                                f"held-out validation slide (seed {VAL_SEED}) with >= 50% tissue in "
                                f"the truth mask, majority label"),
                "bins": ECE_BINS,
                "ece_before": info["ece_before"],
                "ece_after": info["ece_after"],
            },
        },
        "license": "CC0-1.0",
        "not_for_diagnosis": True,
        "x-architecture": {
            "family": "DenseNet-BC",
            "growth_rate": demo.GROWTH,
            "blocks": list(demo.BLOCKS),
            "init_features": demo.INIT_FEATURES,
            "bn_size": demo.BN_SIZE,
            "parameters": n_params,
            "defined_in": "scripts/make-demo-model.py (DemoDenseNet)",
        },
        "x-training": {
            "made_by": "scripts/train-default-model.py",
            "train_slide_seeds": list(TRAIN_SEEDS),
            "validation_slide_seed": VAL_SEED,
            "seed": SEED,
            "steps": info["steps"],
            "batch": BATCH,
            "optimizer": f"AdamW lr {LR} one-cycle, weight decay {WEIGHT_DECAY}",
            "augmentation": "flips, 90-degree rotations, per-channel gain +-6%, brightness +-3%",
            "resampling": "448x448 level-0 read (0.25 um/px) reduced 2x by 2x2 area averaging",
            "torch": torch.__version__,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("HP_BIN",
                                                    os.path.join(HERE, "..", "build", "histoplan")))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "models", "zoo"))
    ap.add_argument("--work", help="keep generated slides here (default: a temporary folder)")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--reuse-trained", action="store_true",
                    help="reuse the weights a previous run saved in --work (skips training)")
    ap.add_argument("--real-dir", default=REAL_DIR,
                    help="real H&E sets for the detector's detection rate (skipped when absent)")
    ap.add_argument("--max-minutes", type=float, default=20.0,
                    help="safety cap on the training loop (default 20)")
    ap.add_argument("--recalibrate", action="store_true",
                    help="only refit the detector's threshold and the temperature for the model in --out")
    args = ap.parse_args()
    if args.recalibrate:
        recalibrate(args)
        return

    t0 = time.time()
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    rng = np.random.RandomState(SEED)

    tmp = None
    if args.work:
        work = args.work
        os.makedirs(work, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hp-train-")
        work = tmp.name

    log("generating slides")
    for seed in TRAIN_SEEDS:
        stem = os.path.join(work, f"train{seed}")
        if not os.path.exists(stem + ".truth.json"):  # written last: a complete earlier run
            synth(args.bin, stem + ".tiff", TRAIN_SIZE, seed)
    vstem = os.path.join(work, f"val{VAL_SEED}")
    if not os.path.exists(vstem + ".truth.json"):
        synth(args.bin, vstem + ".tiff", VAL_SIZE, VAL_SEED)
    cstem = os.path.join(work, f"cal{CAL_SEED}")
    if not os.path.exists(cstem + ".truth.json"):
        synth(args.bin, cstem + ".tiff", CAL_SIZE, CAL_SEED)

    t = time.time()
    xtr, ytr, train_per_class, pool_sizes = train_tiles(work, rng)
    xva, yva = val_tiles(vstem)
    log(f"tiles: train {len(xtr)} {train_per_class} (drawn from {pool_sizes} clean corners), "
        f"validation {len(xva)} {np.bincount(yva, minlength=4).tolist()}; {time.time() - t:.1f} s")

    # Normalization: the training tiles' per-channel mean and std on 0..1 RGB, rounded.
    xf = xtr.reshape(-1, 3).astype(np.float64) / 255.0
    mean = [round(float(v), 3) for v in xf.mean(0)]
    std = [round(float(v), 3) for v in xf.std(0)]
    del xf
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    log(f"normalization mean {mean} std {std}")

    model = demo.DemoDenseNet(len(CLASSES)).to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    trained = os.path.join(work, f"trained-{args.steps}.pt")
    if args.reuse_trained and os.path.exists(trained):
        # The detector and calibration steps can be rerun on the same weights (a rerun of the
        # training gives them too, only slower).
        state = torch.load(trained)
        model.load_state_dict(state["model"])
        args.steps = 0
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=max(args.steps, 1),
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(SEED + 1)
    ytr_t = torch.from_numpy(ytr)
    order = torch.randperm(len(xtr), generator=gen)
    pos = 0
    t = time.time()
    steps_done = 0
    model.train()
    for step in range(args.steps):
        if time.time() - t > args.max_minutes * 60:
            log(f"stopping at step {step}: --max-minutes {args.max_minutes} reached")
            break
        if pos + BATCH > len(order):
            order = torch.randperm(len(xtr), generator=gen)
            pos = 0
        idx = order[pos:pos + BATCH]
        pos += BATCH
        xb = augment(to_float(xtr[idx.numpy()]), gen)
        xb = ((xb - mean_t) / std_t).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), ytr_t[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        steps_done = step + 1
        if step % 10 == 0 or step + 1 == args.steps:
            log(f"  step {step:4d} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.5f} "
                f"{time.time() - t:.0f} s")
    train_s = time.time() - t
    if args.steps == 0:
        steps_done = state["steps"]
    else:
        torch.save({"model": model.state_dict(), "steps": steps_done}, trained)
    log(f"trained {steps_done} steps x {BATCH} in {train_s:.0f} s")

    t = time.time()
    pred = predict(model, xva, mean_t, std_t).argmax(1)
    acc, recall, conf = metrics_of(pred, torch.from_numpy(yva))
    log(f"validation ({time.time() - t:.0f} s): accuracy {acc}, recall {recall}")
    log(f"  confusion (rows truth, cols prediction): {conf}")

    model = model.to(memory_format=torch.contiguous_format).eval()
    data = demo.export_bytes(model)
    sha = hashlib.sha256(data).hexdigest()
    info = {"n_train": len(xtr), "train_per_class": train_per_class, "n_val": len(xva),
            "val_per_class": {CLASSES[c]: int((yva == c).sum()) for c in range(4)},
            "val_acc": acc, "val_recall": recall, "val_conf": conf, "steps": steps_done}

    # Out-of-domain detector and temperature, from the trained model: mean and precision of the
    # training tiles' penultimate features here; threshold, temperature and rates from what
    # `histoplan analyze` itself computes on held-out slides (calibrate_with_pipeline).
    t = time.time()
    ftr, _ = features_and_logits(model, xtr, mean_t, std_t)
    mu, prec = fit_detector(ftr)
    cal = calibrate_with_pipeline(args, work, data, mean, std, mu, prec, feature_value_name(data))
    info.update(cal["info"])
    ood_bytes = cal["ood_bytes"]
    log(f"detector and calibration: {time.time() - t:.0f} s")

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, NAME + ".onnx")
    card_path = os.path.join(args.out, NAME + ".card.json")
    ood_path = os.path.join(args.out, NAME + ".ood.json")
    for path, payload in ((onnx_path, data), (ood_path, ood_bytes),
                          (card_path, (json.dumps(card(sha, n_params, mean, std, info), indent=2)
                                       + "\n").encode())):
        with open(path + ".tmp", "wb") as f:
            f.write(payload)
        os.replace(path + ".tmp", path)
    log(f"{onnx_path}: {len(data)} bytes, {n_params} parameters, sha256 {sha}")
    log(f"{card_path}: written; total {time.time() - t0:.0f} s (training {train_s:.0f} s)")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
