"""histoplan's stain normalization against an independent numpy implementation.

The reference below is written from the published methods, not from histoplan's C:
- Macenko et al., "A method for normalizing histology slides for quantitative analysis",
  ISBI 2009, as in its reference implementation (HEnorm_python, Io = 240, alpha = 1,
  beta = 0.15): np.cov + np.linalg.eigh, np.percentile of the angles, np.linalg.lstsq for the
  concentrations. Two deliberate differences from HEnorm_python, both documented in
  pipeline/stain.h: the inverse of OD = -ln((I + 1) / Io) is Io exp(-OD) - 1 (HEnorm_python
  drops the -1), and the output is rounded and clipped to 0..255 (HEnorm_python truncates and
  maps values over 255 to 254). The principal eigenvector is turned towards positive OD, as
  staintools does, so the angles stay away from arctan2's cut.
- Reinhard et al., "Color transfer between images", 2001, in CIELAB (D65) instead of
  l-alpha-beta: standard sRGB / XYZ / CIELAB formulas in float64.

For each pair (target, source) and method, `test_stain --run` (the C test program) fits both
images and normalizes the source; this script does the same in numpy and compares: Macenko stain
vectors within 2 degrees, maximal concentrations within 2 %, Reinhard LAB moments within 0.05,
and the normalized images within 1.5 levels mean absolute difference.
Exits 77 when the real patches or the C test program are missing."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

IO, ALPHA, BETA = 240.0, 1.0, 0.15
PAIRS = [
    ("tiatoolbox_stain_target_1000px.png", "tiatoolbox_stain_source_256px.png"),
    ("crc150_target.png", "crc150_test_1.png"),
    ("crc150_target.png", "crc150_test_2.png"),
    ("tiatoolbox_stain_target_1000px.png", "HEnorm_example1_1024px.png"),
]

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


# ---- Macenko -----------------------------------------------------------------------------

def macenko_fit(img):
    od = -np.log((img.reshape(-1, 3).astype(np.float64) + 1.0) / IO)
    odhat = od[~np.any(od < BETA, axis=1)]
    _, vecs = np.linalg.eigh(np.cov(odhat.T))
    plane = vecs[:, 1:3].copy()  # columns: second largest, largest
    if plane[:, 1].sum() < 0:
        plane[:, 1] *= -1
    proj = odhat @ plane
    phi = np.arctan2(proj[:, 0], proj[:, 1])
    lo, hi = np.percentile(phi, ALPHA), np.percentile(phi, 100 - ALPHA)
    vmin = plane @ np.array([np.sin(lo), np.cos(lo)])
    vmax = plane @ np.array([np.sin(hi), np.cos(hi)])
    he = np.stack([vmin, vmax], 1) if vmin[0] > vmax[0] else np.stack([vmax, vmin], 1)
    conc = np.linalg.lstsq(he, od.T, rcond=None)[0]
    maxc = np.percentile(conc, 99, axis=1)
    return he, maxc


def macenko_apply(img, src, tgt):
    (he_s, maxc_s), (he_t, maxc_t) = src, tgt
    od = -np.log((img.reshape(-1, 3).astype(np.float64) + 1.0) / IO)
    conc = np.linalg.lstsq(he_s, od.T, rcond=None)[0]
    conc *= (maxc_t / maxc_s)[:, None]
    out = IO * np.exp(-(he_t @ conc)) - 1.0
    return np.clip(np.round(out.T), 0, 255).reshape(img.shape).astype(np.uint8)


# ---- Reinhard in CIELAB ------------------------------------------------------------------

M_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]])
WHITE = np.array([0.95047, 1.0, 1.08883])
EPS = (6 / 29) ** 3


def rgb2lab(img):
    c = img.reshape(-1, 3).astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ M_RGB2XYZ.T / WHITE
    f = np.where(xyz > EPS, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab2rgb(lab, shape):
    fy = (lab[:, 0] + 16) / 116
    f = np.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * WHITE
    lin = np.clip(xyz @ np.linalg.inv(M_RGB2XYZ).T, 0, 1)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.round(255 * c), 0, 255).reshape(shape).astype(np.uint8)


def reinhard_fit(img):
    lab = rgb2lab(img)
    return lab.mean(0), lab.std(0)


def reinhard_apply(img, src, tgt):
    lab = rgb2lab(img)
    lab = (lab - src[0]) / src[1] * tgt[1] + tgt[0]
    return lab2rgb(lab, img.shape)


def angle_deg(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def main():
    shared = os.environ.get("HP_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
    patches = os.path.join(shared, "data", "real", "patches")
    exe = os.path.join(os.environ.get("HP_BUILD_DIR", "build"), "tests", "test_stain")
    if not os.path.isdir(patches) or not os.access(exe, os.X_OK):
        print(f"skipped: needs {patches} and {exe}")
        return 77
    with tempfile.TemporaryDirectory(prefix="hp_stain_") as tmp:
        for tname, sname in PAIRS:
            tpath, spath = os.path.join(patches, tname), os.path.join(patches, sname)
            if not (os.path.exists(tpath) and os.path.exists(spath)):
                print(f"skipped: {tname} or {sname} missing")
                return 77
            tgt, src = load(tpath), load(spath)
            for method in ("macenko", "reinhard"):
                d = os.path.join(tmp, f"{method}_{os.path.splitext(sname)[0]}")
                os.makedirs(d)
                r = subprocess.run([exe, "--run", method, tpath, spath, d], capture_output=True, text=True)
                check(r.returncode == 0, f"{method} {sname} -> {tname}: histoplan ran ({r.stderr.strip()})")
                if r.returncode:
                    continue
                pt = json.load(open(os.path.join(d, "target.json")))
                ps = json.load(open(os.path.join(d, "source.json")))
                out = load(os.path.join(d, "out.png"))
                tag = f"{method} {sname} -> {tname}"
                if method == "macenko":
                    ref_t, ref_s = macenko_fit(tgt), macenko_fit(src)
                    for name, p, ref in (("target", pt, ref_t), ("source", ps, ref_s)):
                        for k, stain in enumerate(("H", "E")):
                            a = angle_deg(p["stain_matrix"][k], ref[0][:, k])
                            check(a < 2.0, f"{tag}: {name} {stain} vector {a:.2e} deg from numpy")
                            rel = abs(p["max_conc"][k] - ref[1][k]) / ref[1][k]
                            check(rel < 0.02, f"{tag}: {name} {stain} max_conc {p['max_conc'][k]:.4f} "
                                              f"vs numpy {ref[1][k]:.4f} ({100 * rel:.2e} %)")
                    ref_out = macenko_apply(src, ref_s, ref_t)
                else:
                    ref_t, ref_s = reinhard_fit(tgt), reinhard_fit(src)
                    for name, p, ref in (("target", pt, ref_t), ("source", ps, ref_s)):
                        dm = np.abs(np.array(p["mean"]) - ref[0]).max()
                        ds = np.abs(np.array(p["std"]) - ref[1]).max()
                        check(dm < 0.05 and ds < 0.05,
                              f"{tag}: {name} LAB mean/std within {dm:.1e}/{ds:.1e} of numpy")
                    ref_out = reinhard_apply(src, ref_s, ref_t)
                diff = np.abs(out.astype(int) - ref_out.astype(int))
                check(out.shape == ref_out.shape and diff.mean() <= 1.5,
                      f"{tag}: output vs numpy mean abs diff {diff.mean():.2e} levels "
                      f"(max {diff.max()}, {100 * (diff > 1).mean():.3f} % over 1)")
    print(f"test_stain_reference: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
