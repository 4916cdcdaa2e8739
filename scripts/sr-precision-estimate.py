#!/usr/bin/python3
"""How much half precision would cost the zoo's super-resolution models: an estimate on the CPU.

The CUDA backend can run a model with its tensors stored in float16 or bfloat16 while cuDNN and
the kernels compute in float32 (`--precision fp16|bf16`). Whether that is accurate enough for a
super-resolution model is measured on a GPU by scripts/gpu-check.sh; on a machine without one,
this script estimates it: it runs each SR model's ONNX graph in PyTorch (scripts/sr_onnx_torch.py)
twice over the three holdout images of scripts/train-superres.py (degraded the trainer's way),
once in float32 and once with the weights, the input and every node's output rounded through the
half type, and reports the output's PSNR against float32, the largest difference in 8-bit grey
levels, the share of 8-bit pixels that change, and the model's own gain over bicubic for scale.

Usage: /usr/bin/python3 scripts/sr-precision-estimate.py [--zoo models/zoo] [--out FILE.json]
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import sr_onnx_torch  # noqa: E402


def load_trainer():
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_superres", os.path.join(HERE, "train-superres.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def to8(y):
    return np.clip(np.rint(y * 255), 0, 255).astype(np.int16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default=os.path.join(ROOT, "models", "zoo"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--crop", type=int, default=256, help="LR crop side per image (default 256)")
    ap.add_argument("--out", help="write the figures as JSON")
    a = ap.parse_args()
    T = load_trainer()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    models = sorted(glob.glob(os.path.join(a.zoo, "histoplan-sr-*.onnx")))
    if not models:
        ap.error(f"no histoplan-sr-*.onnx in {a.zoo}")
    real = os.path.join(a.shared, "data", "real", "patches")
    holdout = [(n, T.load_rgb(os.path.join(real, n))) for n in T.HOLDOUT]
    results = {"method": "PyTorch float32 math, tensors rounded through the half type after every node",
               "images": T.HOLDOUT, "models": {}}
    for path in models:
        name = os.path.basename(path)[:-5]
        card = json.load(open(path[:-5] + ".card.json"))
        scale = card["scale"]
        nets = {"fp32": sr_onnx_torch.load(path), "fp16": sr_onnx_torch.load(path, torch.float16),
                "bf16": sr_onnx_torch.load(path, torch.bfloat16)}
        rng = np.random.default_rng(7)  # the trainer's holdout degradations
        rows = {p: [] for p in ("fp16", "bf16")}
        for _, hr0 in holdout:
            _, lr = T.degrade(hr0, scale, rng)
            lr = lr[:a.crop, :a.crop]
            x = lr.transpose(2, 0, 1)[None].astype(np.float32) / 255
            ref = sr_onnx_torch.run(nets["fp32"], x)
            for p in rows:
                y = sr_onnx_torch.run(nets[p], x)
                d8 = np.abs(to8(y) - to8(ref))
                rows[p].append({"psnr_vs_fp32_db": round(psnr(np.clip(y, 0, 1), np.clip(ref, 0, 1)), 2),
                                "max_8bit_levels": int(d8.max()),
                                "changed_8bit_pct": round(100 * float(np.mean(d8 > 0)), 3)})
        results["models"][name] = {"scale": scale, "gain_over_bicubic_db":
                                   card.get("metrics", {}).get("psnr_gain_over_bicubic_db"), **rows}
        for p, r in rows.items():
            print(f"{name:28s} {p}: PSNR vs fp32 " + " / ".join(f"{v['psnr_vs_fp32_db']:.1f}" for v in r) +
                  " dB; max " + " / ".join(str(v["max_8bit_levels"]) for v in r) + " grey levels; " +
                  " / ".join(f"{v['changed_8bit_pct']:.2f}" for v in r) + "% of 8-bit values change", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
