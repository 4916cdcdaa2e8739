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

Writes, into --out (default models/zoo beside this script):
  histoplan-default-densenet.onnx       opset 13, input "input" [N,3,224,224], output "logits" [N,4]
  histoplan-default-densenet.card.json  the model card (schemas/model-card.schema.json)

Run with Debian's interpreter, from a build that has the histoplan binary:
  nice -n 10 /usr/bin/python3 scripts/train-default-model.py [--bin build/histoplan]
"""

import argparse
import hashlib
import importlib.util
import json
import os
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


def card(sha, n_params, mean, std, info):
    seeds = ", ".join(str(s) for s in TRAIN_SEEDS)
    return {
        "$schema": "../../schemas/model-card.schema.json",
        "name": NAME,
        "version": VERSION,
        "classes": CLASSES,
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
    ap.add_argument("--max-minutes", type=float, default=20.0,
                    help="safety cap on the training loop (default 20)")
    args = ap.parse_args()

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
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=args.steps,
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
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, NAME + ".onnx")
    card_path = os.path.join(args.out, NAME + ".card.json")
    for path, payload in ((onnx_path, data),
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
