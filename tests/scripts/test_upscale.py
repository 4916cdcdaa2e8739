"""`histoplan upscale` through the command line, with a small x2 super-resolution network built
in PyTorch here (two 3x3 convolutions and PixelShuffle, added to a nearest-neighbour upsampling),
exported to ONNX with symbolic height and width.

Checked:
- the output opens in OpenSlide at twice the region's size and half the source MPP, and says what
  it is: aperio.SuperResolved ("yes: not the scanned image"), the source slide's SHA-256 and
  region, the model's SHA-256 and scale;
- its pixels equal PyTorch's output for the whole region at once (context around the region
  included), within JPEG's error, and no worse at the tile seams than inside the tiles (the halo
  hides the seams);
- refusals, each naming the problem: a classifier given as the model, a card whose scale is not
  the model's, a card with both a scale and classes, a region outside the slide, a tile size the
  writer cannot take, no model (usage, exit 2);
- `histoplan analyze` refuses the super-resolved file unless --allow-derived, a de-identified
  copy of it too (deid keeps the provenance, blanking the source's hash), and refuses a
  super-resolution model as a classifier.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

try:
    import numpy as np
    import openslide
    import torch
    from sr_testlib import export_tiny_sr
except ImportError as e:
    T.skip(f"numpy, python3-openslide or PyTorch missing ({e})")

check = T.Checks()
tmp = tempfile.mkdtemp(prefix="hp-upscale-")
SRC = T.SRC
DEMO = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")
model = os.path.join(tmp, "tiny-sr-x2.onnx")
net = export_tiny_sr(model)


def card(path, **fields):
    doc = {"name": "tiny-sr-x2", "version": "0.1", "task": "super-resolution", "scale": 2, "mpp": 0.5,
           "intended_use": "tests only"}
    doc.update(fields)
    doc = {k: v for k, v in doc.items() if v is not None}
    with open(path, "w") as f:
        json.dump(doc, f)


card(model[:-5] + ".card.json")
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()  # noqa: E731

slide = os.path.join(tmp, "slide.tiff")
T.synth(slide, 1024, 768, 7)
X, Y, W, H, HALO = 100, 60, 300, 200, 8
out = os.path.join(tmp, "up.tiff")
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", out, "--roi", f"{X},{Y},{W},{H}", "--tile", "64",
                  "--quality", "100"])
check(rc == 0 and "super-resolved: not the scanned image" in o, f"upscale ran ({(o + e).strip()[-300:]})")

# -- what the file says ------------------------------------------------------------------------
s = openslide.OpenSlide(out)
src = openslide.OpenSlide(slide)
props = s.properties
check(s.dimensions == (2 * W, 2 * H), f"twice the region's size {s.dimensions}")
check(abs(float(props["openslide.mpp-x"]) - float(src.properties["openslide.mpp-x"]) / 2) < 1e-6,
      f"half the source MPP ({props['openslide.mpp-x']})")
check(props.get("aperio.SuperResolved", "").startswith("yes: not the scanned image"), "aperio.SuperResolved says what it is")
check(props.get("aperio.SourceSHA256") == sha(slide), "the source slide's SHA-256")
check(props.get("aperio.SourceRegion") == f"{X},{Y},{W},{H}", f"the source region ({props.get('aperio.SourceRegion')})")
check(props.get("aperio.SRModelSHA256") == sha(model) and props.get("aperio.SRScale") == "2", "the model's SHA-256 and scale")
check(props.get("aperio.SRPrecision") == "fp32" and "fp32" in o, f"the precision it ran in ({props.get('aperio.SRPrecision')})")
check(s.level_count >= 1, f"{s.level_count} level(s)")

# -- the pixels: PyTorch on the whole region, context included ------------------------------------
ctx = np.asarray(src.read_region((X - HALO, Y - HALO), 0, (W + 2 * HALO, H + 2 * HALO)).convert("RGB"), dtype=np.float32) / 255
with torch.no_grad():
    ref = net(torch.from_numpy(ctx.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
ref = np.clip(ref[2 * HALO:-2 * HALO, 2 * HALO:-2 * HALO] * 255 + 0.5, 0, 255).astype(np.float32)
got = np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB"), dtype=np.float32)
err = np.abs(got - ref).mean(axis=2)
check(err.mean() < 1.5, f"equals PyTorch on the whole region within JPEG's error (mean |diff| {err.mean():.3f})")
T_OUT = 128
seam = np.zeros(err.shape, bool)
for k in range(T_OUT, 2 * W, T_OUT):
    seam[:, k - 2:k + 2] = True
for k in range(T_OUT, 2 * H, T_OUT):
    seam[k - 2:k + 2, :] = True
print(f"mean |diff| at tile seams {err[seam].mean():.3f}, inside tiles {err[~seam].mean():.3f}")
check(err[seam].mean() < err[~seam].mean() + 0.5, "no seam: the error at tile borders is that inside the tiles")

# -- refusals ----------------------------------------------------------------------------------
rc, o, e = T.run(["upscale", slide, "--model", DEMO, "--out", os.path.join(tmp, "x.tiff")])
check(rc == 1 and "not a super-resolution model" in e, f"a classifier is refused ({e.strip()[-160:]})")
# A card's name cannot add or override description fields (OpenSlide keeps the last of two keys).
card(model[:-5] + ".card.json", name="evil|SuperResolved = no|SRScale = 1", version="1|SRPrecision = fp8")
spoof = os.path.join(tmp, "spoof.tiff")
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", spoof, "--roi", "0,0,64,64", "--tile", "64"])
sp = openslide.OpenSlide(spoof).properties if rc == 0 else {}
check(rc == 0 and sp.get("aperio.SuperResolved", "").startswith("yes") and sp.get("aperio.SRScale") == "2" and
      sp.get("aperio.SRPrecision") == "fp32" and sp.get("aperio.SRModel", "").startswith("evil/SuperResolved = no/"),
      f"a model name with '|' stays one field ({sp.get('aperio.SuperResolved')}, {sp.get('aperio.SRModel')})")
card(model[:-5] + ".card.json", scale=3)
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff"), "--tile", "64"])
check(rc == 1 and "scale (3) does not match the model" in e, f"a card whose scale is wrong is refused ({e.strip()[-160:]})")
card(model[:-5] + ".card.json", classes=["a", "b"])
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff")])
check(rc == 1 and "has no \"classes\"" in e, f"a super-resolution card with classes is refused ({e.strip()[-160:]})")
card(model[:-5] + ".card.json")
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff"), "--roi", "900,700,300,300"])
check(rc == 1 and "not inside the slide" in e, f"a region outside the slide is refused ({e.strip()[-160:]})")
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff"), "--tile", "20"])
check(rc == 1 and "multiple of 16" in e, f"a tile the writer cannot take is refused ({e.strip()[-160:]})")
rc, o, e = T.run(["upscale", os.path.join(tmp, "Zed_missing.svs"), "--model", model, "--out", os.path.join(tmp, "x.tiff")])
check(rc == 1 and e.count("Zed_missing") == 1, f"a missing slide is named once ({e.strip()[-160:]})")
rc, o, e = T.run(["upscale", slide, "--out", os.path.join(tmp, "x.tiff")])
check(rc == 2 and "--model" in e, "no model: usage error, exit 2")
for prec in ("fp16", "bf16"):
    rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff"), "--precision", prec])
    check(rc == 2 and f"--precision {prec} needs --backend cuda" in e, f"--precision {prec} on the CPU: exit 2 ({e.strip()[-160:]})")
rc, o, e = T.run(["upscale", slide, "--model", model, "--out", os.path.join(tmp, "x.tiff"), "--backend", "cuda",
                  "--precision", "fp8"])
check(rc == 2 and "fp32, fp16 or bf16" in e, f"an unknown precision: exit 2 listing the choices ({e.strip()[-160:]})")
check(not os.path.exists(os.path.join(tmp, "x.tiff")), "no output is left by a refused run")
rc, o, e = T.run(["upscale", out, "--model", model, "--out", os.path.join(tmp, "x.tiff")])
check(rc == 1 and "itself super-resolved" in e, f"a super-resolved slide is not super-resolved again ({e.strip()[-160:]})")

# -- analyze and derived images ----------------------------------------------------------------------
rc, o, e = T.run(["analyze", out, "--model", DEMO, "--out", os.path.join(tmp, "a1")])
check(rc != 0 and "super-resolved" in e and "--allow-derived" in e, f"analyze refuses the super-resolved file ({e.strip()[-200:]})")
rc, o, e = T.run(["analyze", out, "--model", DEMO, "--out", os.path.join(tmp, "a2"), "--allow-derived"])
check(rc == 0, f"... and analyzes it with --allow-derived ({e.strip()[-200:]})")
# slide info says it first, in both forms; a scanned slide says nothing of the kind.
rc, o, e = T.run(["slide", "info", out])
lines = o.splitlines()
check(rc == 0 and len(lines) > 1 and lines[1].startswith("SUPER-RESOLVED: not the scanned image: x2 by tiny-sr-x2 0.1") and
      "from a scan at " in lines[1] and "(of the super-resolved image, not the scan)" in o,
      f"slide info: SUPER-RESOLVED on the line after the file ({lines[1] if len(lines) > 1 else o})")
rc, o, e = T.run(["slide", "info", out, "--json"])
sj = json.loads(o) if rc == 0 else {}
check((sj.get("super_resolved") or {}).get("scale") == "2" and sj["super_resolved"]["model_sha256"] == sha(model) and
      sj["super_resolved"]["source_sha256"] == sha(slide) and sj["super_resolved"]["generative"] is False,
      f"slide info --json: super_resolved with scale, model and source ({sj.get('super_resolved')})")
rc, o, e = T.run(["slide", "info", slide, "--json"])
check(rc == 0 and json.loads(o).get("super_resolved", 0) is None and "SUPER-RESOLVED" not in T.run(["slide", "info", slide])[1],
      "a scanned slide: super_resolved null, no SUPER-RESOLVED line")
# A de-identified copy is still super-resolved: deid keeps the provenance (not the source's hash).
deid = os.path.join(tmp, "up_deid.tiff")
rc, o, e = T.run(["deid", out, "--out", deid])
dp = openslide.OpenSlide(deid).properties if rc == 0 else {}
check(rc == 0 and dp.get("aperio.SuperResolved") == props["aperio.SuperResolved"] and
      all(dp.get("aperio." + k) == props["aperio." + k]
          for k in ("SRModelSHA256", "SRScale", "SRPrecision", "SourceMPP", "SourceRegion")),
      f"deid keeps the super-resolution provenance ({dict((k, v) for k, v in dp.items() if k.startswith('aperio.S'))})")
check(set(dp.get("aperio.SourceSHA256", "X")) == {"X"} and set(dp.get("aperio.SRModel", "X").replace(" ", "")) == {"X"},
      f"... but blanks the identified source's SHA-256 and the card's free text ({dp.get('aperio.SourceSHA256')}, {dp.get('aperio.SRModel')})")
rc, o, e = T.run(["analyze", deid, "--model", DEMO, "--out", os.path.join(tmp, "a4")])
check(rc != 0 and "--allow-derived" in e, f"analyze refuses the de-identified super-resolved copy too ({e.strip()[-160:]})")
o = T.run(["slide", "info", deid])[1]
check("SUPER-RESOLVED: not the scanned image: x2 by a model whose name was removed" in o,
      f"slide info on the de-identified copy still says it ({o.splitlines()[1:2]})")
rc, o, e = T.run(["analyze", slide, "--model", model, "--out", os.path.join(tmp, "a3")])
check(rc != 0 and "super-resolution model" in e, f"analyze refuses a super-resolution model ({e.strip()[-200:]})")
subprocess.run(["rm", "-rf", tmp])
check.exit()
