#!/usr/bin/python3
"""`histoplan analyze --sr auto` against `--sr off` on the same generated slide scanned at twice
the classifier's MPP (1.0 um/px for the default model's 0.5): the cost of super-resolution in the
whole run (tiles/s of each, from findings.json's timings) and what it changes in the result,
scored against the slide's ground truth (histoplan synth's label mask): per-class Dice over the
analysed tiles (each tile labelled by the truth's majority under it), accuracy, and how often the
two runs agree on a tile's class.

usage: benchmarks/bench_analyze_sr.py [--bin build/histoplan] [--size 6144] [--seed 1501]
                                      [--zoo models/zoo] [--json OUT.json]
Prints a markdown table; exits 0, 1 (a run failed), 2 (bad usage).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

CLASSES = ["normal", "benign", "in_situ", "invasive"]  # truth labels 1..4


def analyze(hp, slide, out, sr, zoo):
    env = dict(os.environ, HP_MODEL_DIR=zoo)
    p = subprocess.run([hp, "analyze", slide, "--sr", sr, "--out", out, "--slide-id", "s"], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"analyze --sr {sr} failed: {p.stderr[-800:]}")
    with open(os.path.join(out, "s", "findings.json")) as fh:
        f = json.load(fh)
    with open(os.path.join(out, "s", "tiles.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    return f, rows


def truth_labels(truth_png, truth_json, rows):
    """The truth's majority label (1..4, 0 background) under each tile."""
    lab = np.asarray(Image.open(truth_png))
    with open(truth_json) as fh:
        scale = json.load(fh).get("truth_scale", 64)
    out = []
    for r in rows:
        x, y, s = float(r["x"]), float(r["y"]), float(r["size"])
        x0, y0 = int(x // scale), int(y // scale)
        x1, y1 = max(x0 + 1, int((x + s) // scale)), max(y0 + 1, int((y + s) // scale))
        patch = lab[y0:y1, x0:x1].ravel()
        patch = patch[patch > 0]
        out.append(int(np.bincount(patch, minlength=5).argmax()) if patch.size else 0)
    return np.array(out)


def scores(rows, truth):
    pred = np.array([CLASSES.index(r["top_class"]) + 1 if r["top_class"] in CLASSES else 0 for r in rows])
    keep = truth > 0
    dice = {}
    for k, name in enumerate(CLASSES, 1):
        a, b = pred[keep] == k, truth[keep] == k
        dice[name] = float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    return pred, dice, float((pred[keep] == truth[keep]).mean())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "histoplan"))
    ap.add_argument("--size", type=int, default=6144)
    ap.add_argument("--seed", type=int, default=1501)
    ap.add_argument("--zoo", default=os.path.join(here, "..", "models", "zoo"))
    ap.add_argument("--json")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.zoo, "histoplan-sr-srvgg-x2.onnx")):
        print(f"no histoplan-sr-srvgg-x2.onnx in {a.zoo}", file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryDirectory() as tmp:
        slide = os.path.join(tmp, "coarse.tiff")
        subprocess.run([a.bin, "synth", "--out", slide, "--size", f"{a.size}x{a.size}", "--seed", str(a.seed),
                        "--mpp", "1.0"], check=True, capture_output=True)
        res = {}
        for sr in ("off", "auto"):
            f, rows = analyze(a.bin, slide, os.path.join(tmp, sr), sr, a.zoo)
            truth = truth_labels(slide[:-5] + ".truth.png", slide[:-5] + ".truth.json", rows)
            pred, dice, acc = scores(rows, truth)
            res[sr] = {"tiles": len(rows), "seconds": f["timings_s"]["total"],
                       "tiles_per_s": len(rows) / f["timings_s"]["total"], "dice": dice, "accuracy": acc,
                       "used": f["analysis"]["super_resolution"]["used"], "pred": pred}
        agree = float((res["off"]["pred"] == res["auto"]["pred"]).mean())
    print(f"slide {a.size}x{a.size} at 1.0 um/px (seed {a.seed}); classifier at 0.5 um/px; {res['off']['tiles']} tiles\n")
    print("| | --sr off (bilinear upsampling) | --sr auto (histoplan-sr-srvgg-x2) |")
    print("|---|---|---|")
    print(f"| super-resolved | {res['off']['used']} | {res['auto']['used']} |")
    print(f"| whole run | {res['off']['seconds']:.1f} s, {res['off']['tiles_per_s']:.1f} tiles/s | "
          f"{res['auto']['seconds']:.1f} s, {res['auto']['tiles_per_s']:.1f} tiles/s |")
    print(f"| tile accuracy against the truth | {res['off']['accuracy']:.3f} | {res['auto']['accuracy']:.3f} |")
    for c in CLASSES:
        print(f"| Dice {c} | {res['off']['dice'][c]:.3f} | {res['auto']['dice'][c]:.3f} |")
    print(f"\ncost of SR: {res['off']['tiles_per_s'] / res['auto']['tiles_per_s']:.2f}x the time; "
          f"the two runs agree on {100 * agree:.1f}% of tiles")
    if a.json:
        for v in res.values():
            del v["pred"]
        with open(a.json, "w") as fh:
            json.dump({"size": a.size, "seed": a.seed, "agreement": agree, **res}, fh, indent=1)


if __name__ == "__main__":
    main()
