#!/usr/bin/python3
"""Measures histoplan's shipped super-resolution models through the product path and checks that
they do no harm downstream.

For each SR model in models/zoo (cards with "task": "super-resolution"), on the held-out whole
images of scripts/train-superres.py (HOLDOUT), at the model's scale:
  - the low-resolution input is made with the trainer's scanner-like degradation (optical blur,
    area averaging, JPEG; the same seeds as the card's figures), written as a PNG and run
    through `histoplan upscale LR.png --model M --mpp <card mpp> --quality 100`; the output TIFF
    is read back with OpenSlide (so figures include the product's JPEG-100 output tiles);
  - PSNR and SSIM on RGB and on the haematoxylin channel (colour deconvolution), with an 8-pixel
    border crop, for the model, bicubic and Lanczos (PIL);
  - nuclei: haematoxylin channel smoothed (Gaussian sigma 1), Otsu threshold, opening, connected components of at least
    --min-area pixels, counted on the original, the model's output and bicubic; relative count
    difference and a centroid-matching F1 (one-to-one matching within --match-radius pixels)
    against the original.
Classifier agreement: a slide from `histoplan synth` at 0.5 um/px; its tissue region is degraded
the same way to 0.5 x scale um/px, brought back by the model (`histoplan upscale`) and by bicubic,
cut into 224 x 224 tiles on the same grid, and every tile (original, SR, bicubic) is classified by
models/zoo/histoplan-default-densenet.onnx through `histoplan model run`; the figure is the share
of tiles whose predicted class equals the original's.
Also writes docs/superres-side-by-side.png (--picture): original | bicubic | faithful |
generative (x2) on one holdout crop, with absolute-difference maps below.

usage: scripts/eval-superres.py [--out results.json] [--models NAME,...] [--tiles 300]
           [--picture docs/superres-side-by-side.png] [--histoplan build/histoplan] [--shared ../shared]
Prints a markdown table. Exit status: 0 measured and every faithful (non-generative) SRVGG model
beats bicubic in RGB PSNR on every holdout image (the small ESPCN baseline is reported, not held
to it); 1 a run failed or a faithful SRVGG did not; 2 bad usage.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage, optimize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ZOO = os.path.join(ROOT, "models", "zoo")
CLASSIFIER = os.path.join(ZOO, "histoplan-default-densenet.onnx")
TILE = 224


def load_trainer():
    spec = importlib.util.spec_from_file_location("train_superres", os.path.join(HERE, "train-superres.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = load_trainer()


class Failed(Exception):
    pass


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    return p.stdout


def read_slide(path):
    import openslide
    s = openslide.OpenSlide(path)
    return np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB"))


def upscale(histoplan, model, lr, mpp, tmp, tag):
    """The model's output for lr through `histoplan upscale` (the product path)."""
    src, out = os.path.join(tmp, f"{tag}.png"), os.path.join(tmp, f"{tag}.sr.tiff")
    Image.fromarray(lr).save(src)
    run([histoplan, "upscale", src, "--model", model, "--out", out, "--mpp", str(mpp), "--quality", "100"])
    y = read_slide(out)
    for f in (src, out):
        os.remove(f)
    return y


# ---- nuclei -------------------------------------------------------------------------------------

def nuclei(rgb, min_area):
    """Centroids of haematoxylin blobs: smoothed H channel, Otsu threshold, opening, components."""
    import cv2
    h = ndimage.gaussian_filter(T.haematoxylin(rgb), 1.0).astype(np.uint8)  # chromatin grain is not a nucleus
    _, mask = cv2.threshold(h, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return cent[1:][keep]


def match_f1(ref, got, radius):
    """One-to-one centroid matching (Hungarian on distances, pairs farther than radius dropped)."""
    if len(ref) == 0 or len(got) == 0:
        return 0.0
    d = np.sqrt(((ref[:, None, :] - got[None, :, :]) ** 2).sum(-1))
    big = 1e6
    r, c = optimize.linear_sum_assignment(np.where(d <= radius, d, big))
    tp = int((d[r, c] <= radius).sum())
    return 2 * tp / (len(ref) + len(got))


# ---- classifier agreement -----------------------------------------------------------------------

def classify(histoplan, tiles, tmp):
    """Predicted class per tile (uint8 N x 224 x 224 x 3) by the default classifier through the CLI."""
    card = json.load(open(CLASSIFIER[:-5] + ".card.json"))
    mean = np.array(card["normalization"]["mean"], np.float32)[:, None, None]
    std = np.array(card["normalization"]["std"], np.float32)[:, None, None]
    preds = []
    for i in range(0, len(tiles), 64):
        x = (tiles[i:i + 64].transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std
        xin, yout = os.path.join(tmp, "tiles.npy"), os.path.join(tmp, "logits.npy")
        np.save(xin, x.astype(np.float32))
        run([histoplan, "model", "run", CLASSIFIER, "--input", xin, "--output", yout, "--threads", "2"])
        preds.append(np.load(yout).argmax(1))
    return np.concatenate(preds)


def cut(img, keep):
    rows, cols = img.shape[0] // TILE, img.shape[1] // TILE
    out = [img[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] for r in range(rows) for c in range(cols)]
    return np.stack(out)[keep]


def synth_region(histoplan, tmp, ntiles):
    """A region of a generated slide at 0.5 um/px, a whole number of tiles per side, with room for
    ntiles tissue tiles (background tiles are left out: a class there means nothing)."""
    side = int(np.ceil(np.sqrt(ntiles * 1.5))) * TILE
    path = os.path.join(tmp, "synth.tiff")
    run([histoplan, "synth", "--out", path, "--size", f"{side + 2 * TILE}x{side + 2 * TILE}", "--seed", "2026",
         "--mpp", "0.5"])
    img = read_slide(path)
    return img[TILE:TILE + side, TILE:TILE + side]


# ---- picture ------------------------------------------------------------------------------------

def side_by_side(path, panels, zoom=2):
    """panels: [(label, crop)], the first the original; absolute-difference maps (x4) below."""
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 18)
        small = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 14)
    except OSError:
        font = small = ImageFont.load_default()
    ref = panels[0][1].astype(np.int16)
    h, w = ref.shape[:2]
    ph, pw, gap, top = h * zoom, w * zoom, 8, 30
    canvas = Image.new("RGB", (len(panels) * (pw + gap) + gap, 2 * (ph + top) + gap + 24), "white")
    d = ImageDraw.Draw(canvas)
    for i, (label, crop) in enumerate(panels):
        x = gap + i * (pw + gap)
        canvas.paste(Image.fromarray(crop).resize((pw, ph), Image.NEAREST), (x, top))
        d.text((x, 6), label, fill="black", font=font)
        diff = np.abs(crop.astype(np.int16) - ref).mean(2)
        dimg = np.clip(255 - diff * 4, 0, 255).astype(np.uint8)  # white = equal, dark = differs
        canvas.paste(Image.fromarray(dimg).resize((pw, ph), Image.NEAREST), (x, 2 * top + ph))
        text = "|difference| x4 from the original" if i == 0 else f"|difference| x4, mean {diff.mean():.1f}"
        if i == 0:
            d.text((x + 20, 2 * top + ph + ph // 2), "(the reference itself)", fill="gray", font=small)
        d.text((x, top + ph + 8), text, fill="black", font=small)
    d.text((gap, canvas.size[1] - 22), "Top: HR original and x2 reconstructions from its degraded half-resolution "
           "version (blur, area average, JPEG). Bottom: darker = further from the original.",
           fill="black", font=small)
    canvas.save(path)


# ---- main ---------------------------------------------------------------------------------------

def sr_models(zoo, names):
    out = []
    for f in sorted(os.listdir(zoo)):
        if not f.endswith(".card.json"):
            continue
        card = json.load(open(os.path.join(zoo, f)))
        if card.get("task") != "super-resolution" or (names and card["name"] not in names):
            continue
        out.append((card["name"], os.path.join(zoo, card["name"] + ".onnx"), card))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON of all figures")
    ap.add_argument("--models", default="", help="comma-separated model names (default: every SR model in the zoo)")
    ap.add_argument("--tiles", type=int, default=300, help="classifier-agreement tiles (default 300)")
    ap.add_argument("--min-area", type=int, default=60, help="smallest nucleus in HR pixels (default 60)")
    ap.add_argument("--match-radius", type=float, default=6.0, help="centroid match radius, HR pixels (default 6)")
    ap.add_argument("--picture", default=os.path.join(ROOT, "docs", "superres-side-by-side.png"))
    ap.add_argument("--zoo", default=ZOO, help="folder of the models (default models/zoo)")
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    a = ap.parse_args()
    models = sr_models(a.zoo, [n for n in a.models.split(",") if n])
    if not models:
        ap.error("no super-resolution model found (or none of --models)")
    if not os.access(a.histoplan, os.X_OK):
        ap.error(f"{a.histoplan}: not an executable (build histoplan first)")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    real = os.path.join(a.shared, "data", "real", "patches")
    holdout = [(n, T.load_rgb(os.path.join(real, n))) for n in T.HOLDOUT]
    crop = (slice(T.BORDER, -T.BORDER), slice(T.BORDER, -T.BORDER))
    results = {"border_px": T.BORDER, "output_path": "histoplan upscale --quality 100, read with OpenSlide",
               "nuclei": {"min_area_px": a.min_area, "match_radius_px": a.match_radius}, "models": {}}
    failed, picture = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        region = synth_region(a.histoplan, tmp, a.tiles)
        every = cut(region, slice(None))
        keep = np.flatnonzero(every.reshape(len(every), -1).mean(1) < 215)[:a.tiles]
        orig_tiles = every[keep]
        orig_pred = classify(a.histoplan, orig_tiles, tmp)
        results["classifier"] = {"model": os.path.basename(CLASSIFIER), "tiles": len(orig_tiles),
                                 "source": "histoplan synth --seed 2026 --mpp 0.5",
                                 "original_class_counts": np.bincount(orig_pred, minlength=4).tolist()}
        for name, path, card in models:
            scale, mpp = card["scale"], card["mpp"]
            generative = bool(card.get("generative"))
            log(f"{name}: x{scale}, input {mpp} um/px{' (generative)' if generative else ''}")
            m = {"scale": scale, "generative": generative, "images": []}
            rng = np.random.default_rng(7)  # the trainer's holdout seed: the card's degradations
            for img_name, hr0 in holdout:
                hr, lr = T.degrade(hr0, scale, rng)
                outs = {"model": upscale(a.histoplan, path, lr, mpp, tmp, "holdout"),
                        "bicubic": T.upscale_pil(lr, scale, Image.BICUBIC),
                        "lanczos": T.upscale_pil(lr, scale, Image.LANCZOS)}
                if outs["model"].shape != hr.shape:
                    raise Failed(f"{name}: upscale gave {outs['model'].shape}, expected {hr.shape}")
                ref = hr[crop]
                row = {"image": img_name}
                for k, v in outs.items():
                    v = v[crop]
                    row[k] = {"psnr": round(T.psnr(v, ref), 3), "ssim": round(T.ssim(v, ref), 4),
                              "psnr_h": round(T.psnr(T.haematoxylin(v), T.haematoxylin(ref)), 3),
                              "ssim_h": round(T.ssim(T.haematoxylin(v), T.haematoxylin(ref)), 4)}
                for k in ("psnr", "ssim", "psnr_h", "ssim_h"):
                    row[f"gain_{k}_vs_bicubic"] = round(row["model"][k] - row["bicubic"][k], 4)
                    row[f"gain_{k}_vs_lanczos"] = round(row["model"][k] - row["lanczos"][k], 4)
                cr = nuclei(ref, a.min_area)
                nuc = {"original": len(cr)}
                for k in ("model", "bicubic"):
                    c = nuclei(outs[k][crop], a.min_area)
                    nuc[k] = len(c)
                    nuc[f"{k}_rel_diff"] = round((len(c) - len(cr)) / max(len(cr), 1), 4)
                    nuc[f"{k}_f1"] = round(match_f1(cr, c, a.match_radius), 4)
                row["nuclei"] = nuc
                m["images"].append(row)
                if not generative and "-srvgg-" in name and row["model"]["psnr"] <= row["bicubic"]["psnr"]:
                    failed.append(f"{name} is not better than bicubic on {img_name}")
                if scale == 2 and img_name == T.HOLDOUT[0]:
                    key = "generative" if generative else ("faithful" if "srvgg" in name else None)
                    if key:
                        picture["original"], picture["bicubic"] = hr, outs["bicubic"]
                        picture[key] = outs["model"]
                log(f"  {img_name}: PSNR {row['model']['psnr']} vs bicubic {row['bicubic']['psnr']}, "
                    f"nuclei {nuc}")
            g = [r["gain_psnr_vs_bicubic"] for r in m["images"]]
            m["mean_gain_psnr_vs_bicubic"] = round(float(np.mean(g)), 3)
            # classifier agreement at this model's scale
            _, lr = T.degrade(region, scale, np.random.default_rng(11))
            sr = upscale(a.histoplan, path, lr, mpp, tmp, "synth")
            bic = T.upscale_pil(lr, scale, Image.BICUBIC)
            p_sr = classify(a.histoplan, cut(sr, keep), tmp)
            p_bic = classify(a.histoplan, cut(bic, keep), tmp)
            m["classifier_agreement"] = {"model": round(float((p_sr == orig_pred).mean()), 4),
                                         "bicubic": round(float((p_bic == orig_pred).mean()), 4),
                                         "lr_mpp": 0.5 * scale}
            tot = {k: sum(r["nuclei"][k] for r in m["images"]) for k in ("original", "model", "bicubic")}
            m["nuclei_total"] = tot
            # fit to ship: nuclei within 5 % of the original on every image and agreement >= bicubic
            m["no_harm"] = bool(all(abs(r["nuclei"]["model_rel_diff"]) <= 0.05 for r in m["images"])
                                and m["classifier_agreement"]["model"] >= m["classifier_agreement"]["bicubic"])
            log(f"  classifier agreement {m['classifier_agreement']}")
            results["models"][name] = m
    if {"original", "faithful", "generative"} <= picture.keys() and a.picture:
        y0, x0, s = 420, 420, 192
        c = lambda im: np.ascontiguousarray(im[y0:y0 + s, x0:x0 + s])  # noqa: E731
        side_by_side(a.picture, [("original (HR)", c(picture["original"])), ("bicubic x2", c(picture["bicubic"])),
                                 ("faithful SRVGG x2", c(picture["faithful"])),
                                 ("generative SRVGG-GAN x2", c(picture["generative"]))])
        results["picture"] = os.path.relpath(a.picture, ROOT)
    results["failed_checks"] = failed
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    print("| model | image | PSNR model / bicubic / Lanczos | gain vs bicubic (RGB, H) | SSIM gain (RGB, H) "
          "| nuclei orig / model / bicubic | F1 model / bicubic |")
    print("|---|---|---|---|---|---|---|")
    for name, m in results["models"].items():
        for r in m["images"]:
            n = r["nuclei"]
            print(f"| {name} | {r['image']} | {r['model']['psnr']:.2f} / {r['bicubic']['psnr']:.2f} / "
                  f"{r['lanczos']['psnr']:.2f} | {r['gain_psnr_vs_bicubic']:+.2f} dB, {r['gain_psnr_h_vs_bicubic']:+.2f} dB "
                  f"| {r['gain_ssim_vs_bicubic']:+.4f}, {r['gain_ssim_h_vs_bicubic']:+.4f} | {n['original']} / "
                  f"{n['model']} / {n['bicubic']} | {n['model_f1']:.3f} / {n['bicubic_f1']:.3f} |")
    print()
    print("| model | mean PSNR gain vs bicubic | classifier agreement model / bicubic | no harm |")
    print("|---|---|---|---|")
    for name, m in results["models"].items():
        ca = m["classifier_agreement"]
        print(f"| {name} | {m['mean_gain_psnr_vs_bicubic']:+.2f} dB | {ca['model']:.3f} / {ca['bicubic']:.3f} "
              f"| {'yes' if m['no_harm'] else 'NO'} |")
    for f in failed:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"eval-superres: {e}", file=sys.stderr)
        sys.exit(1)
