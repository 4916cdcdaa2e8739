"""Test data for `histoplan eval` and `histoplan eval-wsi`: a fake BACH Part A layout built from
the shared BACH sample images (one real image per class) and crops of generated slides whose
class the generator's ground truth gives, plus helpers shared by the eval tests."""
import csv
import os
import subprocess

import numpy as np
import openslide
from PIL import Image

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(SRC, "..", "shared"))
MODEL = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")

BACH_CLASSES = ["Normal", "Benign", "InSitu", "Invasive"]  # ordinal order, Part B labels 0..3
BACH_PREFIX = {"Normal": "n", "Benign": "b", "InSitu": "is", "Invasive": "iv"}
REAL = {c: os.path.join(SHARED, "data", "real", "bach", f"BACH_{c}_sample.png") for c in BACH_CLASSES}
# The generator's truth labels: 0 background, 1 normal, 2 benign, 3 in situ, 4 invasive.
TRUTH_TO_BACH = {1: "Normal", 2: "Benign", 3: "InSitu", 4: "Invasive"}


def run(*args, timeout=900):
    cmd = ["nice", "-n", "19", HP_BIN] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def have_real_bach():
    return all(os.path.exists(p) for p in REAL.values())


def write_tiff(path, rgb, mpp=None):
    """An RGB TIFF; with `mpp`, resolution tags in centimetres (what the TIFF reader uses)."""
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    if mpp:
        img.save(path, format="TIFF", resolution=1e4 / mpp, resolution_unit=3)
    else:
        img.save(path, format="TIFF")


def synth_crops(workdir, seed, per_class, side_blocks=11, size=6144, mpp=0.42):
    """Crops of side side_blocks*64 level-0 pixels from a generated slide at `mpp`, each lying
    wholly in one class region of the generator's truth: {bach class: [rgb arrays]}."""
    slide = os.path.join(workdir, f"synth-{seed}.tiff")
    if not os.path.exists(slide):
        rc, out = run("synth", "--out", slide, "--size", f"{size}x{size}", "--seed", seed,
                      "--mpp", mpp)
        assert rc == 0, out
    truth = np.array(Image.open(slide[:-5] + ".truth.png"))
    osr = openslide.OpenSlide(slide)
    crops = {c: [] for c in BACH_CLASSES}
    taken = np.zeros_like(truth, dtype=bool)
    w = side_blocks
    for y in range(0, truth.shape[0] - w + 1, 2):
        for x in range(0, truth.shape[1] - w + 1, 2):
            b = truth[y:y + w, x:x + w]
            lab = int(b[0, 0])
            if lab == 0 or not (b == lab).all() or taken[y:y + w, x:x + w].any():
                continue
            cls = TRUTH_TO_BACH[lab]
            if len(crops[cls]) >= per_class:
                continue
            taken[y:y + w, x:x + w] = True
            region = osr.read_region((x * 64, y * 64), 0, (w * 64, w * 64)).convert("RGB")
            crops[cls].append(np.array(region))
    osr.close()
    return crops


def fake_bach(root, workdir, per_class=3, seed=11, with_csv=True, real=True):
    """ROOT/Photos/<Class>/<prefix>NNN.tif: the real sample image of each class (when present)
    and `per_class` generated crops; Photos/microscopy_ground_truth.csv. Returns [(name, class)]
    in ImageFolder order (class folders sorted, then file names)."""
    photos = os.path.join(root, "Photos")
    crops = synth_crops(workdir, seed, per_class)
    rows = []
    for cls in BACH_CLASSES:
        d = os.path.join(photos, cls)
        os.makedirs(d, exist_ok=True)
        images = []
        if real and os.path.exists(REAL[cls]):
            images.append(np.array(Image.open(REAL[cls]).convert("RGB")))
        images += crops[cls]
        assert len(crops[cls]) == per_class, f"only {len(crops[cls])} crops of {cls}"
        for i, rgb in enumerate(images, 1):
            name = f"{BACH_PREFIX[cls]}{i:03d}.tif"
            write_tiff(os.path.join(d, name), rgb)
            rows.append((f"{cls}/{name}", cls))
    if with_csv:
        with open(os.path.join(photos, "microscopy_ground_truth.csv"), "w", newline="") as fh:
            for name, cls in rows:
                fh.write(f"{name.split('/')[1]},{cls}\n")
    rows.sort(key=lambda r: (r[0].split("/")[0], r[0].split("/")[1]))
    return rows


def read_predictions(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
