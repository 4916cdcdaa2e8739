#!/usr/bin/env python3
"""Train a tile classifier for histoplan on BACH Part A, class folders or a CSV of path,label,
export it to ONNX and write its model card.

    /usr/bin/python3 scripts/train-classifier.py DATA --out DIR [--arch densenet121]
        [--split kfold:5:SEED:FOLD | eva | all] [--mpp 0.5] [--tile 224] [--epochs 30]
        [--patience 5] [--batch 32] [--lr 1e-3] [--weights FILE] [--resume] [--device auto]

- Data and splits come from `histoplan eval DATA --list --split S`, so training and evaluation
  use one definition of the data set (BACH layout, class folders, CSV) and of every split (eva's
  BACH split, seeded stratified folds). Training uses the images the split leaves out; the split's
  images are the validation set (early stopping) and, at the end, `histoplan eval` measures the
  exported model on them and the card records those figures.
- Patches are sampled at the target MPP (--mpp, the card's): each image is resampled from its own
  MPP (--data-mpp, else its TIFF resolution tags, else BACH's 0.42 for a BACH folder) and random
  tile-sized crops are cut from it, with geometric augmentation (flips, 90-degree rotations, a
  +-10% scale jitter) and stain augmentation (a random scale and shift of each haematoxylin,
  eosin and residual channel in optical density, Ruifrok and Johnston's H&E-DAB matrix, and a
  small brightness jitter).
- Any torchvision classifier by name (densenet121, densenet169, densenet201, resnet50, ...), its
  head sized to the classes. Pretrained weights are loaded only from a file (--weights; a head of
  another size is left out): nothing is downloaded.
- CPU (Debian's PyTorch) or GPU (--device cuda, or auto). A checkpoint is written after every
  epoch (DIR/checkpoint.pt); --resume continues from it.
- Output: DIR/<name>.onnx (opset 13, input "input" NCHW float, output "logits", dynamic batch),
  DIR/<name>.card.json (schemas/model-card.schema.json: classes in output order, input size,
  normalization, MPP, SHA-256, training data, split, metrics of `histoplan eval` on the validation
  images), DIR/eval-val/ (that evaluation's files), DIR/training.json (per-epoch log).

A model trained here is a research artefact: its card says it is not for diagnosis.
"""
import argparse
import csv
import hashlib
import io
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
from PIL import Image

try:
    import torch
    import torchvision
except ImportError as e:  # pragma: no cover
    sys.exit(f"train-classifier: PyTorch and torchvision are needed ({e}); on Debian run it with "
             "/usr/bin/python3 (python3-torch, python3-torchvision)")

BACH_MPP = 0.42
# The canonical BACH classes in ordinal order and the spellings histoplan's table accepts
# (eval/eval_labels.c): keys are lower-case letters and digits only.
CANONICAL = ["normal", "benign", "in_situ", "invasive"]
SPELLINGS = {
    "normal": "normal", "normaltissue": "normal", "healthy": "normal",
    "benign": "benign", "benignlesion": "benign", "benigntissue": "benign",
    "insitu": "in_situ", "insitucarcinoma": "in_situ", "carcinomainsitu": "in_situ", "cis": "in_situ",
    "dcis": "in_situ",
    "invasive": "invasive", "invasivecarcinoma": "invasive", "carcinomainvasive": "invasive",
    "idc": "invasive",
}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Ruifrok and Johnston (2001): rows are the optical density of haematoxylin, eosin and DAB.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
RGB_FROM_HED = RGB_FROM_HED / np.linalg.norm(RGB_FROM_HED, axis=1, keepdims=True)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)


def canonical(label):
    key = "".join(c for c in label.lower() if c.isalnum())
    return SPELLINGS.get(key)


def fail(msg):
    sys.exit(f"train-classifier: {msg}")


# ---- data ---------------------------------------------------------------------------------

def list_split(histoplan, data, split):
    p = subprocess.run([histoplan, "eval", data, "--list", "--split", split], capture_output=True,
                       text=True)
    if p.returncode != 0:
        fail(p.stderr.strip() or f"histoplan eval --list failed ({p.returncode})")
    return list(csv.DictReader(io.StringIO(p.stdout)))


def looks_like_bach(data):
    d = os.path.join(data, "Photos") if os.path.isdir(os.path.join(data, "Photos")) else data
    return os.path.isfile(os.path.join(d, "microscopy_ground_truth.csv")) or d != data


def image_mpp(img, override, bach):
    """The MPP histoplan eval would use: --data-mpp, TIFF resolution tags, BACH's 0.42."""
    if override:
        return override
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 282 in tags:
        unit = tags.get(296, 2)
        res = float(tags[282])
        per = {2: 25400.0, 3: 10000.0}.get(unit)
        if per and res > 0 and 0.05 <= per / res <= 20:
            return per / res
    if bach:
        return BACH_MPP
    return None


def load_resampled(path, target_mpp, override, bach):
    img = Image.open(path)
    mpp = image_mpp(img, override, bach)
    if mpp is None:
        fail(f"{path}: no microns per pixel in its metadata; give --data-mpp")
    img = img.convert("RGB")
    w, h = img.size
    nw, nh = max(1, round(w * mpp / target_mpp)), max(1, round(h * mpp / target_mpp))
    if (nw, nh) != (w, h):
        shrink = min(w / nw, h / nh)
        img = img.resize((nw, nh), Image.BOX if shrink >= 2 else Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def centred_tiles(a, T):
    """The tiles `histoplan eval` cuts: floor(W/T) x floor(H/T), centred, white past the edge."""
    h, w = a.shape[:2]
    nx, ny = max(1, w // T), max(1, h // T)
    ox = (w - nx * T) // 2 if w >= T else -((T - w + 1) // 2)
    oy = (h - ny * T) // 2 if h >= T else -((T - h + 1) // 2)
    pad = np.full((h + 2 * T, w + 2 * T, 3), 255, np.uint8)
    pad[T:T + h, T:T + w] = a
    return [pad[T + oy + j * T:T + oy + (j + 1) * T, T + ox + i * T:T + ox + (i + 1) * T]
            for j in range(ny) for i in range(nx)]


def stain_jitter(patch, rng, sigma=0.05, bias=0.02):
    od = -np.log((patch.astype(np.float64) + 1) / 256.0)
    hed = od.reshape(-1, 3) @ HED_FROM_RGB
    hed = hed * rng.uniform(1 - sigma, 1 + sigma, 3) + rng.uniform(-bias, bias, 3)
    rgb = 256.0 * np.exp(-(hed @ RGB_FROM_HED)) - 1
    rgb *= rng.uniform(0.95, 1.05)
    return np.clip(rgb, 0, 255).reshape(patch.shape).astype(np.uint8)


def random_patch(a, T, rng, stain=True):
    s = rng.uniform(0.9, 1.1)
    side = max(8, int(round(T * s)))
    h, w = a.shape[:2]
    if h < side or w < side:
        pad = np.full((max(h, side), max(w, side), 3), 255, np.uint8)
        pad[:h, :w] = a
        a, h, w = pad, pad.shape[0], pad.shape[1]
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = a[y:y + side, x:x + side]
    if side != T:
        crop = np.asarray(Image.fromarray(crop).resize((T, T), Image.BILINEAR))
    crop = np.rot90(crop, rng.integers(0, 4))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop)
    return stain_jitter(crop, rng) if stain else crop


def to_tensor(patches, mean, std):
    x = torch.from_numpy(np.stack(patches)).float().div_(255).permute(0, 3, 1, 2)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


# ---- model --------------------------------------------------------------------------------

def build_model(arch, n_classes, weights):
    if not hasattr(torchvision.models, arch) or not callable(getattr(torchvision.models, arch)):
        fail(f"--arch {arch}: no such torchvision model")
    try:
        model = getattr(torchvision.models, arch)(weights=None, num_classes=n_classes)
    except TypeError as e:
        fail(f"--arch {arch}: {e}")
    if weights:
        state = torch.load(weights, map_location="cpu")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        own = model.state_dict()
        kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        left = sorted(set(own) - set(kept))
        model.load_state_dict(kept, strict=False)
        print(f"weights: {len(kept)} tensors from {weights}; {len(left)} left at their "
              f"initialization ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})")
    return model


def evaluate(model, images, labels, T, mean, std, device, batch):
    """Mean tile probability per image, as histoplan eval aggregates; returns probs, loss."""
    model.eval()
    probs = []
    with torch.no_grad():
        for a in images:
            tiles = centred_tiles(a, T)
            out = []
            for i in range(0, len(tiles), batch):
                x = to_tensor(tiles[i:i + batch], mean, std).to(device)
                out.append(torch.softmax(model(x).float(), dim=1).cpu())
            probs.append(torch.cat(out).mean(0).numpy())
    p = np.stack(probs)
    y = np.array(labels)
    loss = float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))
    return p, loss


def balanced_accuracy(y, pred, c):
    rec = [np.mean(pred[y == k] == k) for k in range(c) if (y == k).any()]
    return float(np.mean(rec)) if rec else float("nan")


# ---- main ---------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="BACH Part A folder, class folders, or a CSV of path,label")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--name", default=None, help="model name (default: <arch>-<data folder>)")
    ap.add_argument("--arch", default="densenet121", help="torchvision classifier (default densenet121)")
    ap.add_argument("--split", default="kfold:5:0:0",
                    help="validation split, as histoplan eval --split: kfold:K:SEED:FOLD, eva, "
                         "eva:val, or all (no validation; default kfold:5:0:0)")
    ap.add_argument("--mpp", type=float, default=0.5, help="microns per pixel of the tiles (default 0.5)")
    ap.add_argument("--tile", type=int, default=224, help="tile side in pixels (default 224)")
    ap.add_argument("--data-mpp", type=float, default=None, help="MPP of every image (overrides metadata)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patches-per-image", type=int, default=8, help="random patches per image per epoch")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--patience", type=int, default=5, help="epochs without a better validation score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default=None, help="pretrained weights (a state dict file)")
    ap.add_argument("--norm", choices=["imagenet", "data"], default="imagenet",
                    help="normalization: ImageNet's mean and std, or measured on training patches")
    ap.add_argument("--no-stain-augment", action="store_true")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    ap.add_argument("--histoplan", default=os.environ.get("HP_BIN", "histoplan"),
                    help="the histoplan command (default: $HP_BIN or histoplan)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="histoplan eval's bootstrap replicates")
    ap.add_argument("--license", default="unspecified: set by whoever trains and releases the model")
    args = ap.parse_args()

    if args.split.startswith("kfold:") and args.split.count(":") != 3:
        fail("--split kfold:K:SEED needs the fold to validate on: kfold:K:SEED:FOLD")
    if args.split in ("eva", "eva:val"):
        args.split = "eva:val"
    elif args.split == "eva:train":
        fail("--split eva:train would validate on eva's training images; use eva (its validation split)")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    os.makedirs(args.out, exist_ok=True)
    name = args.name or f"{args.arch}-{os.path.basename(os.path.normpath(args.data))}".replace(" ", "_")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    rows = list_split(args.histoplan, args.data, args.split)
    if any(not r["label"] for r in rows):
        fail(f"{args.data} carries no labels; training needs them")
    labels = sorted({r["label"] for r in rows})
    canon = {l: canonical(l) for l in labels}
    if all(canon.values()):
        classes = [c for c in CANONICAL if c in canon.values()] if len(set(canon.values())) < 4 else CANONICAL
        cls_of = {l: classes.index(canon[l]) for l in labels}
    else:
        classes = labels
        cls_of = {l: i for i, l in enumerate(labels)}
    validate = args.split != "all"
    train_rows = [r for r in rows if r["selected"] == "0"] if validate else rows
    val_rows = [r for r in rows if r["selected"] == "1"] if validate else []
    if not train_rows:
        fail("the split leaves no image to train on")
    bach = looks_like_bach(args.data)
    print(f"data: {len(rows)} images, classes {classes}; split {args.split}: {len(train_rows)} train, "
          f"{len(val_rows)} validation; device {device}")
    t0 = time.time()
    train_imgs = [load_resampled(r["path"], args.mpp, args.data_mpp, bach) for r in train_rows]
    train_y = [cls_of[r["label"]] for r in train_rows]
    val_imgs = [load_resampled(r["path"], args.mpp, args.data_mpp, bach) for r in val_rows]
    val_y = [cls_of[r["label"]] for r in val_rows]
    print(f"images loaded and resampled to {args.mpp} um/px in {time.time() - t0:.1f} s")

    if args.norm == "data":
        sample = [random_patch(train_imgs[i % len(train_imgs)], args.tile, rng, stain=False)
                  for i in range(64)]
        px = np.stack(sample).reshape(-1, 3) / 255.0
        mean = px.mean(0).round(4).tolist()
        std = np.maximum(px.std(0), 1e-3).round(4).tolist()
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD

    model = build_model(args.arch, len(classes), args.weights).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_imgs) * args.patches_per_image / args.batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    state = {"epoch": 0, "step": 0, "best": None, "best_state": None, "stale": 0, "log": []}
    if args.resume:
        if not os.path.isfile(ckpt_path):
            fail(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location="cpu")
        if ck["classes"] != classes or ck["arch"] != args.arch:
            fail(f"--resume: the checkpoint is of {ck['arch']} with classes {ck['classes']}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state = ck["state"]
        mean, std = ck["mean"], ck["std"]
        rng = np.random.default_rng(args.seed + 7919 * state["step"])
        torch.manual_seed(args.seed + state["step"])
        print(f"resumed at epoch {state['epoch']}, step {state['step']}")

    done = False
    while state["epoch"] < args.epochs and not done:
        model.train()
        t = time.time()
        losses = []
        for _ in range(steps_per_epoch):
            if args.max_steps is not None and state["step"] >= args.max_steps:
                done = True
                break
            pick = rng.integers(0, len(train_imgs), args.batch)
            x = to_tensor([random_patch(train_imgs[i], args.tile, rng, not args.no_stain_augment)
                           for i in pick], mean, std).to(device)
            y = torch.tensor([train_y[i] for i in pick], device=device)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            state["step"] += 1
            losses.append(float(loss))
        entry = {"epoch": state["epoch"], "step": state["step"],
                 "train_loss": float(np.mean(losses)) if losses else None, "seconds": time.time() - t}
        if validate:
            p, vloss = evaluate(model, val_imgs, val_y, args.tile, mean, std, device, args.batch)
            yv = np.array(val_y)
            bal = balanced_accuracy(yv, p.argmax(1), len(classes))
            entry.update(val_loss=vloss, val_balanced_accuracy=bal)
            score = (bal, -vloss)
            if state["best"] is None or score > tuple(state["best"]):
                state["best"], state["stale"] = list(score), 0
                state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                state["best_epoch"] = state["epoch"]
            else:
                state["stale"] += 1
        state["log"].append(entry)
        state["epoch"] += 1
        print(json.dumps(entry))
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "state": state, "classes": classes,
                    "arch": args.arch, "mean": mean, "std": std}, ckpt_path)
        if validate and state["stale"] >= args.patience:
            print(f"early stop: no better validation score for {args.patience} epochs")
            break

    if state.get("best_state") is not None:
        model.load_state_dict(state["best_state"])
    model = model.cpu().eval()
    onnx_path = os.path.join(args.out, name + ".onnx")
    dummy = torch.zeros(1, 3, args.tile, args.tile)
    torch.onnx.export(model, dummy, onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                      do_constant_folding=True)
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    card = {
        "name": name,
        "version": "0.1.0",
        "classes": classes,
        "input_size": [args.tile, args.tile],
        "normalization": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]},
        "mpp": args.mpp,
        "sha256": sha,
        "training_data": (f"{len(train_rows)} images of {args.data} (histoplan eval --list: "
                          f"{len(rows)} images; split {args.split}, training on the images it leaves "
                          f"out); labels {', '.join(f'{l}->{classes[cls_of[l]]}' for l in labels)}"),
        "intended_use": ("Research: trained by scripts/train-classifier.py. Not validated for and not "
                         "to be used for diagnosis, screening or any clinical decision."),
        "metrics": {"note": "not evaluated: no validation split (--split all)"},
        "license": args.license,
        "not_for_diagnosis": True,
        "x-training": {
            "made_by": "scripts/train-classifier.py", "arch": args.arch, "split": args.split,
            "epochs_run": state["epoch"], "steps": state["step"], "best_epoch": state.get("best_epoch"),
            "batch": args.batch, "lr": args.lr, "seed": args.seed, "patience": args.patience,
            "weights": os.path.basename(args.weights) if args.weights else None,
            "augmentation": ("flips, 90-degree rotations, scale +-10%" +
                             ("" if args.no_stain_augment else
                              ", H&E optical density scale +-5% and shift +-0.02, brightness +-5%")),
            "device": str(device), "torch": torch.__version__, "torchvision": torchvision.__version__,
        },
    }
    card_path = os.path.join(args.out, name + ".card.json")

    def write_card():
        with open(card_path + ".tmp", "w") as fh:
            json.dump(card, fh, indent=2)
            fh.write("\n")
        os.replace(card_path + ".tmp", card_path)

    write_card()
    with open(os.path.join(args.out, "training.json"), "w") as fh:
        json.dump({"log": state["log"], "classes": classes, "split": args.split}, fh, indent=2)
    if validate:
        ev = os.path.join(args.out, "eval-val")
        cmd = [args.histoplan, "eval", "--model", onnx_path, args.data, "--split", args.split,
               "--out", ev, "--overwrite", "--bootstrap", str(args.bootstrap)]
        if args.data_mpp:
            cmd += ["--mpp", str(args.data_mpp)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"histoplan eval on the validation images failed: {p.stderr.strip()}")
        with open(os.path.join(ev, "metrics.json")) as fh:
            m = json.load(fh)
        keep = ["accuracy", "balanced_accuracy", "two_class_accuracy", "macro_f1", "macro_auc", "brier", "ece"]
        card["metrics"] = {
            "source": "histoplan eval on the validation split (eval-val/metrics.json beside the model)",
            "split": args.split, "images": m["metrics"]["images"],
            "bootstrap": m["bootstrap"],
            **{k: {"value": m["metrics"][k]["value"], "ci95": m["metrics"][k]["ci95"]} for k in keep},
        }
        write_card()
        print(p.stdout.strip())
    print(f"written: {onnx_path}, {card_path}")


if __name__ == "__main__":
    main()
