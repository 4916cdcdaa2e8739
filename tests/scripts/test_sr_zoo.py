"""The zoo's super-resolution models (models/zoo/histoplan-sr-*.onnx), through the command line.

For each model:
- its card loads through the CLI (`histoplan model info`), and a copy of the card with an unknown
  field is refused (so the first check proves the card was read and validated);
- the card's sha256 is the ONNX file's, its task is super-resolution with a scale of 2 or 4, and
  it says what the model is (a generative model says it may invent texture; a faithful SRVGG's
  recorded gain over bicubic is positive on every holdout image);
- `histoplan model run` on a random input and on a real H&E input agrees with PyTorch running the
  same ONNX graph with the file's initializers (scripts/sr_onnx_torch.py, computed here) within
  1e-4 relative;
- `histoplan upscale` on a PNG of real H&E writes a TIFF that OpenSlide opens at scale x the
  input's size.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

try:
    import numpy as np
    import openslide
    import torch  # noqa: F401
    from PIL import Image
    sys.path.insert(0, os.path.join(T.SRC, "scripts"))
    import sr_onnx_torch
except ImportError as e:
    T.skip(f"numpy, PIL, python3-openslide, onnx or PyTorch missing ({e})")

HE = os.path.join(T.SHARED, "data", "real", "patches", "TCGA-HE-7130-01Z-00-DX1_region_1000px.png")
if not os.path.exists(HE):
    T.skip(f"real H&E image missing: {HE}")

check = T.Checks()
tmp = tempfile.mkdtemp(prefix="hp-sr-zoo-")
models = sorted(glob.glob(os.path.join(T.SRC, "models", "zoo", "histoplan-sr-*.onnx")))
names = [os.path.basename(m)[:-5] for m in models]
for want in ("histoplan-sr-srvgg-x2", "histoplan-sr-espcn-x2", "histoplan-sr-srvgg-x4", "histoplan-sr-srvgg-gan-x2"):
    check(want in names, f"{want} is in the zoo")

he = np.asarray(Image.open(HE).convert("RGB"))
rng = np.random.default_rng(14)


def rel_err(a, ref):
    return float(np.abs(a.astype(np.float64) - ref).max() / max(float(np.abs(ref).max()), 1e-12))


try:
    for model in models:
        name = os.path.basename(model)[:-5]
        card_path = model[:-5] + ".card.json"
        card = json.load(open(card_path))
        scale = card.get("scale")

        rc, o, e = T.run(["model", "info", model])
        check(rc == 0, f"{name}: model info loads it with its card ({(o + e).strip()[-200:]})")
        bad_dir = os.path.join(tmp, "bad")
        os.makedirs(bad_dir, exist_ok=True)
        bad_model = os.path.join(bad_dir, name + ".onnx")
        shutil.copy(model, bad_model)
        with open(bad_model[:-5] + ".card.json", "w") as f:
            json.dump(dict(card, scael=2), f)
        rc, o, e = T.run(["model", "info", bad_model])
        check(rc != 0 and "scael" in e, f"{name}: a copy of its card with an unknown field is refused ({e.strip()[-160:]})")

        sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
        check(card.get("sha256") == sha, f"{name}: card sha256 matches the file")
        check(card.get("task") == "super-resolution" and scale in (2, 4) and card.get("name") == name,
              f"{name}: card says super-resolution, scale {scale}")
        check(f"-x{scale}" in name and abs(card.get("mpp", 0) - 0.5 * scale) < 1e-9,
              f"{name}: name and input MPP match the scale ({card.get('mpp')} um/px)")
        gains = card.get("metrics", {}).get("psnr_gain_over_bicubic_db", [])
        if card.get("generative"):
            check("invent" in card.get("intended_use", "") and "not for primary diagnosis" in card["intended_use"],
                  f"{name}: the card says it is generative and may invent texture")
        elif "-srvgg-" in name:
            check(len(gains) >= 3 and all(g > 0 for g in gains),
                  f"{name}: recorded gain over bicubic positive on every holdout image ({gains})")
        else:  # the small ESPCN baseline: its figures are recorded, whatever they are
            check(len(gains) >= 3, f"{name}: gain over bicubic recorded for every holdout image ({gains})")

        net = sr_onnx_torch.load(model)
        inputs = {"random": rng.random((1, 3, 37, 50), dtype=np.float32),
                  "real H&E": he[300:396, 410:530].transpose(2, 0, 1)[None].astype(np.float32) / 255}
        for label, x in inputs.items():
            xin, yout = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
            np.save(xin, x)
            rc, o, e = T.run(["model", "run", model, "--input", xin, "--output", yout, "--threads", "2"])
            if not check(rc == 0, f"{name}: model run on the {label} input ({e.strip()[-200:]})"):
                continue
            y, ref = np.load(yout), sr_onnx_torch.run(net, x)
            want_shape = (1, 3, x.shape[2] * scale, x.shape[3] * scale)
            check(y.shape == ref.shape == want_shape, f"{name}: {label} output shape {y.shape}, PyTorch {ref.shape}")
            if y.shape == ref.shape:
                err = rel_err(y, ref)
                check(err < 1e-4, f"{name}: {label} input agrees with PyTorch (max rel err {err:.2e})")

        src = os.path.join(tmp, "lr.png")
        h, w = 70, 90
        Image.fromarray(he[500:500 + h, 600:600 + w]).save(src)
        out = os.path.join(tmp, name + ".tiff")
        rc, o, e = T.run(["upscale", src, "--model", model, "--out", out, "--mpp", str(card.get("mpp"))])
        if check(rc == 0, f"{name}: upscale of a {w}x{h} PNG ({(o + e).strip()[-200:]})"):
            s = openslide.OpenSlide(out)
            check(s.dimensions == (w * scale, h * scale), f"{name}: upscaled TIFF is {s.dimensions}, want "
                  f"{(w * scale, h * scale)}")
            mpp = float(s.properties.get("openslide.mpp-x", "nan"))
            check(abs(mpp - card["mpp"] / scale) < 1e-6, f"{name}: output MPP {mpp} = input MPP / scale")
            gen = s.properties.get("aperio.SRGenerative", "")
            check(gen.startswith("yes") == bool(card.get("generative")) and
                  s.properties.get("aperio.SuperResolved", "").startswith("yes"),
                  f"{name}: the TIFF says it is super-resolved, and generative exactly when the model is ({gen!r})")
            s.close()
finally:
    shutil.rmtree(tmp, ignore_errors=True)
check.exit()
