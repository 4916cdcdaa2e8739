#!/usr/bin/python3
"""`histoplan eval` throughput against the same evaluation written in PyTorch, side by side.

In one run, on the same machine, the same images, the same model weights and the same tiling:
  histoplan  `histoplan eval --model M DATA --out TMP --bootstrap 0 --batch B --threads T`
             (reader threads decode and resample images while the model runs)
  pytorch    the same evaluation as a researcher would write it with PyTorch: a Dataset that
             reads each image (PIL), resamples it from 0.42 to the card's um/px, cuts the same
             centred tiles and normalizes them as the card says; a DataLoader with T workers;
             the torch module the ONNX file was exported from, batches of B tiles across images,
             softmax, the mean over each image's tiles, argmax; torch.set_num_threads(cores),
             torch.inference_mode()

Images: a BACH-like Part A folder made once in out/bench/ (git ignores out/): 2048 x 1536 crops
at 0.42 um/px (BACH's size and scale) of slides made by `histoplan synth`, filed under the class
that covers most of their tissue in the generator's truth, with microscopy_ground_truth.csv.

Figures: images/s of the whole command (process start to exit: loading the model, reading,
resampling, tiling, inference, writing) and of the evaluation loop alone (histoplan: metrics.json
timing.inference_s; PyTorch: the loop over the DataLoader), and the ratio histoplan / PyTorch
(above 1: histoplan faster). Before the figures it checks that both computed the same thing:
the share of images with the same predicted class and the largest difference of an image's
probability (the two resamplers differ slightly at the pixel level, so expect agreement, not
identity). It flags CONTENDED when other processes used over 0.1 cores during the run.

  /usr/bin/python3 benchmarks/bench_eval.py [--model demo|densenet121] [--images 16] [--batch 32]
      [--threads T] [--rounds 1] [--histoplan build/histoplan] [--json F]

This is a benchmark, not a test.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_cpu_densenet import (DEMO, _torch_model, cpu_busy_s, git_state, machine,  # noqa: E402
                                own_cpu_s, run_child)

CACHE = os.path.join(ROOT, "out", "bench")
CLASSES = ["normal", "benign", "in_situ", "invasive"]
BACH = {1: "Normal", 2: "Benign", 3: "InSitu", 4: "Invasive"}
PREFIX = {"Normal": "n", "Benign": "b", "InSitu": "is", "Invasive": "iv"}


# ---- the PyTorch peer (a child process) -------------------------------------------------------

def child_main(spec):
    import numpy as np
    import torch
    from PIL import Image
    torch.set_num_threads(spec["threads"])
    T, target, mean, std = spec["tile"], spec["mpp"], spec["mean"], spec["std"]

    class Tiles(torch.utils.data.Dataset):
        def __len__(self):
            return len(spec["images"])

        def __getitem__(self, i):
            img = Image.open(spec["images"][i]).convert("RGB")
            w, h = img.size
            nw, nh = round(w * 0.42 / target), round(h * 0.42 / target)
            img = img.resize((nw, nh), Image.BOX if min(w / nw, h / nh) >= 2 else Image.BILINEAR)
            a = np.asarray(img)
            nx, ny = max(1, nw // T), max(1, nh // T)
            ox, oy = (nw - nx * T) // 2, (nh - ny * T) // 2
            tiles = np.stack([a[oy + j * T:oy + (j + 1) * T, ox + k * T:ox + (k + 1) * T]
                              for j in range(ny) for k in range(nx)])
            x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float().div_(255)
            return i, (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    t_start = time.perf_counter()
    if spec["torch"]["kind"] == "torchvision4":
        import torchvision
        model = getattr(torchvision.models, spec["torch"]["arch"])(weights=None, num_classes=4)
        model.load_state_dict(torch.load(spec["torch"]["weights"]))
        model.eval()
    else:
        model = _torch_model(spec["torch"])
    loader = torch.utils.data.DataLoader(Tiles(), batch_size=None, num_workers=spec["threads"])
    probs = [None] * len(spec["images"])
    pending, owners = [], []

    def flush():
        x = torch.cat(pending)
        p = torch.softmax(model(x), dim=1)
        at = 0
        for i, n in owners:
            probs[i] = (probs[i] if probs[i] is not None else 0) + p[at:at + n].sum(0)
            at += n
        pending.clear()
        owners.clear()

    t0 = time.perf_counter()
    counts = [0] * len(spec["images"])
    with torch.inference_mode():
        for i, x in loader:
            counts[i] = len(x)
            # Batches of B tiles that may span images, as histoplan makes them.
            while len(x):
                room = spec["batch"] - sum(n for _, n in owners)
                pending.append(x[:room])
                owners.append((i, len(x[:room])))
                x = x[room:]
                if sum(n for _, n in owners) == spec["batch"]:
                    flush()
        if owners:
            flush()
    loop = time.perf_counter() - t0
    out = [(p / c).tolist() for p, c in zip(probs, counts)]
    print(json.dumps({"loop_s": loop, "since_start_s": time.perf_counter() - t_start, "probs": out,
                      "tiles": sum(counts), "torch": torch.__version__}))


# ---- data and model ---------------------------------------------------------------------------

def make_data(histoplan, n):
    import numpy as np
    import openslide
    from PIL import Image
    root = os.path.join(CACHE, f"eval-bach-{n}")
    photos = os.path.join(root, "Photos")
    if os.path.exists(os.path.join(photos, "microscopy_ground_truth.csv")):
        return root
    shutil.rmtree(root, ignore_errors=True)
    for c in BACH.values():
        os.makedirs(os.path.join(photos, c))
    rows, seed = [], 3001
    while len(rows) < n:
        slide = os.path.join(CACHE, f"eval-synth-{seed}.tiff")
        if not os.path.exists(slide):
            subprocess.run([histoplan, "synth", "--out", slide, "--size", "6144x4608", "--seed", str(seed),
                            "--mpp", "0.42"], check=True, capture_output=True)
        truth = np.array(Image.open(slide[:-5] + ".truth.png"))
        osr = openslide.OpenSlide(slide)
        for y in range(0, 4608, 1536):
            for x in range(0, 6144, 2048):
                if len(rows) >= n:
                    break
                block = truth[y // 64:(y + 1536) // 64, x // 64:(x + 2048) // 64]
                labels = block[block > 0]
                if labels.size < block.size // 4:
                    continue  # mostly glass
                cls = BACH[int(np.bincount(labels).argmax())]
                k = sum(1 for _, c in rows if c == cls) + 1
                name = f"{PREFIX[cls]}{k:03d}.tif"
                osr.read_region((x, y), 0, (2048, 1536)).convert("RGB").save(
                    os.path.join(photos, cls, name), format="TIFF")
                rows.append((name, cls))
        osr.close()
        seed += 1
    with open(os.path.join(photos, "microscopy_ground_truth.csv"), "w") as fh:
        fh.write("".join(f"{a},{b}\n" for a, b in rows))
    return root


def prepare(model):
    """(onnx path, card, torch spec). densenet121 with a 4-class head is exported once (seeded)."""
    if model == "demo":
        with open(DEMO[:-5] + ".card.json") as fh:
            return DEMO, json.load(fh), {"kind": "demo"}
    os.makedirs(CACHE, exist_ok=True)
    onnx_path = os.path.join(CACHE, f"{model}-4class-seed0.onnx")
    pt = os.path.join(CACHE, f"{model}-4class-seed0.pt")
    if not os.path.exists(onnx_path):
        code = f"""
import torch, torchvision
torch.manual_seed(0)
m = torchvision.models.{model}(weights=None, num_classes=4).eval()
torch.save(m.state_dict(), {pt!r})
torch.onnx.export(m, torch.zeros(1, 3, 224, 224), {onnx_path!r}, opset_version=13,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={{"input": {{0: "N"}}, "logits": {{0: "N"}}}})
"""
        subprocess.run([sys.executable, "-c", code], check=True)
    import hashlib
    card = {"name": f"{model}-4class-seed0", "classes": CLASSES, "input_size": [224, 224],
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "mpp": 0.5, "sha256": hashlib.sha256(open(onnx_path, "rb").read()).hexdigest(),
            "training_data": "none: random weights (benchmark)", "not_for_diagnosis": True}
    with open(onnx_path[:-5] + ".card.json", "w") as fh:
        json.dump(card, fh)
    return onnx_path, card, {"kind": "torchvision4", "arch": model, "weights": pt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="demo", help="demo (models/zoo) or a torchvision DenseNet name")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child_main(json.loads(a.child))
    import numpy as np

    data = make_data(a.histoplan, a.images)
    onnx_path, card, tspec = prepare(a.model)
    images = []
    with open(os.path.join(data, "Photos", "microscopy_ground_truth.csv")) as fh:
        rows = [l.strip().split(",") for l in fh if l.strip()]
    order = sorted((cls, name) for name, cls in rows)  # ImageFolder order, as histoplan eval lists
    images = [os.path.join(data, "Photos", c, n) for c, n in order]
    spec = {"images": images, "threads": a.threads, "batch": a.batch, "tile": card["input_size"][0],
            "mpp": card["mpp"], "mean": card["normalization"]["mean"],
            "std": card["normalization"]["std"], "torch": tspec}
    busy0, own0, t0 = cpu_busy_s(), own_cpu_s(), time.perf_counter()
    hp, pt = [], []
    for _ in range(a.rounds):
        out = tempfile.mkdtemp(prefix="bench-eval-")
        cmd = [a.histoplan, "eval", "--model", onnx_path, data, "--out", os.path.join(out, "o"),
               "--bootstrap", "0", "--batch", str(a.batch), "--threads", str(a.threads)]
        so, se, rc, wall, rss = run_child(cmd)
        if rc:
            sys.exit(f"bench_eval: histoplan eval failed: {se[-1500:]}")
        m = json.load(open(os.path.join(out, "o", "metrics.json")))
        with open(os.path.join(out, "o", "predictions.csv")) as fh:
            lines = fh.read().splitlines()[1:]
        hp_probs = [[float(v) for v in l.split(",")[3:3 + len(card["classes"])]] for l in lines]
        hp.append({"wall_s": wall, "loop_s": m["timing"]["inference_s"], "rss_mib": rss,
                   "tiles": m["tiling"]["tiles"], "probs": hp_probs})
        shutil.rmtree(out, ignore_errors=True)
        so, se, rc, wall, rss = run_child([sys.executable, os.path.abspath(__file__), "--child",
                                           json.dumps(spec)])
        if rc:
            sys.exit(f"bench_eval: the PyTorch evaluation failed: {se[-1500:]}")
        r = json.loads(so.strip().splitlines()[-1])
        pt.append({"wall_s": wall, "loop_s": r["loop_s"], "rss_mib": rss, "tiles": r["tiles"],
                   "probs": r["probs"], "torch": r["torch"]})
    elapsed = time.perf_counter() - t0
    other = (cpu_busy_s() - busy0) - (own_cpu_s() - own0) if busy0 is not None else None
    n = len(images)
    a_hp, a_pt = np.array(hp[-1]["probs"]), np.array(pt[-1]["probs"])
    same = float(np.mean(a_hp.argmax(1) == a_pt.argmax(1)))
    diff = float(np.abs(a_hp - a_pt).max())
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    res = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "git": git_state(), "model": os.path.relpath(onnx_path, ROOT),
        "images": n, "tiles": hp[-1]["tiles"], "tiles_pytorch": pt[-1]["tiles"], "batch": a.batch,
        "threads": a.threads, "rounds": a.rounds, "torch": pt[-1]["torch"],
        "histoplan": {"images_per_s_command": n / med(hp, "wall_s"), "images_per_s_loop": n / med(hp, "loop_s"),
                      "peak_rss_mib": max(x["rss_mib"] for x in hp)},
        "pytorch": {"images_per_s_command": n / med(pt, "wall_s"), "images_per_s_loop": n / med(pt, "loop_s"),
                    "peak_rss_mib": max(x["rss_mib"] for x in pt)},
        "same_prediction": same, "max_prob_diff": diff,
        "other_cpu_cores": other / elapsed if other is not None else None,
    }
    h, p = res["histoplan"], res["pytorch"]
    print(f"{res['date']}  {res['machine']['cpu']} x{res['machine']['cores']}  commit {res['git']['commit']}")
    print(f"model {res['model']}, {n} images 2048x1536 at 0.42 um/px, {res['tiles']} tiles of "
          f"{card['input_size'][0]} px at {card['mpp']} um/px, batch {a.batch}, {a.threads} threads, "
          f"{a.rounds} round(s)")
    print(f"agreement: same predicted class for {same:.0%} of images, max |p_histoplan - p_pytorch| = {diff:.2e}")
    print(f"{'':24}{'histoplan':>12}{'PyTorch':>12}{'ratio':>8}")
    for key, label in [("images_per_s_command", "images/s, whole command"),
                       ("images_per_s_loop", "images/s, evaluation loop")]:
        print(f"{label:24}{h[key]:12.2f}{p[key]:12.2f}{h[key] / p[key]:8.2f}")
    print(f"{'peak RSS MiB':24}{h['peak_rss_mib']:12.0f}{p['peak_rss_mib']:12.0f}")
    if res["other_cpu_cores"] is not None:
        flag = "  CONTENDED: not worth recording" if res["other_cpu_cores"] > 0.1 else ""
        print(f"other processes used {res['other_cpu_cores']:.2f} cores during the run{flag}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
