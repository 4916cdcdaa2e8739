"""`histoplan eval-wsi`: BACH Part B ground truth (Aperio annotation XML) against the tile
predictions of an analysis, scored with Aresta et al. 2019's eq. 1.

- a hand-computed case: findings.json and tiles.csv written by hand for a 1024 px slide, three
  regions; at downsample 64 the score is 1 - (16*1 + 16*1 + 8*2) / (16*3 + 16*3 + 8*2) = 4/7,
  with Dice and IoU per class counted by hand, and a perfect second slide (score 1) pooled;
- a generated slide analysed with the default model, its generator truth written as BACH-style
  XML (BACH's label spellings): score, sums, Dice and IoU equal an independent numpy
  rasterization of the same XML and tiles.csv, at a downsample and at a pyramid level;
- refused with a clear message: malformed XML (line named), a polygon outside the slide, a
  label that is no BACH class, a vertex that is not a number, another root element, findings of
  a model without BACH's classes, truth and findings given out of order, an existing OUT.
"""
import csv
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
try:
    import jsonschema
    import numpy as np
    import openslide
    import eval_testlib as T
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema, numpy or openslide not available ({e})")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def write_xml(path, regions, root="Annotations"):
    """regions: [(text, [(x, y), ...])] as Aperio ImageScope writes them."""
    with open(path, "w") as fh:
        fh.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} MicronsPerPixel="0.25">\n')
        fh.write('<Annotation Id="1" Name="" LineColor="65280"><Regions>\n')
        for i, (text, pts) in enumerate(regions, 1):
            fh.write(f'<Region Id="{i}" Type="0" Text="{text}"><Attributes/><Vertices>\n')
            for x, y in pts:
                fh.write(f'<Vertex X="{x}" Y="{y}" Z="0"/>\n')
            fh.write("</Vertices></Region>\n")
        fh.write(f"</Regions></Annotation>\n</{root}>\n")


def fake_findings(d, slide_id, w, h, tiles, classes=("normal", "benign", "in_situ", "invasive")):
    """A findings.json with the fields eval-wsi reads and a tiles.csv: tiles [(x, y, size, class)]."""
    os.makedirs(d, exist_ok=True)
    doc = {"slide": {"slide_id": slide_id, "sha256": "0" * 64, "level0_width_px": w,
                     "level0_height_px": h},
           "classes": [{"name": c} for c in classes], "outputs": {"tiles_csv": "tiles.csv"}}
    with open(os.path.join(d, "findings.json"), "w") as fh:
        json.dump(doc, fh)
    with open(os.path.join(d, "tiles.csv"), "w") as fh:
        fh.write("tile_index,i,j,x,y,size,tissue_fraction,"
                 + ",".join(f"prob_{c}" for c in classes) + ",entropy,top_class\n")
        for n, (x, y, s, c) in enumerate(tiles):
            probs = [0.9 if k == c else 0.1 / (len(classes) - 1) for k in classes]
            fh.write(f"{n},0,0,{x},{y},{s},1," + ",".join(str(p) for p in probs) + f",0.1,{c}\n")
    return os.path.join(d, "findings.json")


with open(os.path.join(T.SRC, "schemas", "wsi-metrics.schema.json")) as fh:
    SCHEMA = json.load(fh)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def load(out):
    with open(os.path.join(out, "wsi-metrics.json")) as fh:
        doc = json.load(fh)
    errs = list(VALIDATOR.iter_errors(doc))
    check(not errs, "wsi-metrics.json validates against schemas/wsi-metrics.schema.json"
          + (f" ({errs[0].message})" if errs else ""))
    return doc


# ---- an independent rasterization and score -----------------------------------------------

def raster_truth(regions, D, w, h):
    """Even-odd rule at pixel centres (a crossing counts when y0 <= yc < y1 or the reverse),
    the most severe label last."""
    g = np.zeros((h, w), np.uint8)
    yc = (np.arange(h) + 0.5) * D
    xc = (np.arange(w) + 0.5) * D
    for cls in range(4):
        for c, pts in regions:
            if c != cls:
                continue
            inside = np.zeros((h, w), bool)
            for k in range(len(pts)):
                (x0, y0), (x1, y1) = pts[k], pts[(k + 1) % len(pts)]
                rows = (y0 <= yc) != (y1 <= yc)
                if not rows.any():
                    continue
                xi = x0 + (yc[rows] - y0) * (x1 - x0) / (y1 - y0)
                inside[rows] ^= xc[None, :] < xi[:, None]
            g[inside] = cls
    return g


def raster_pred(tiles_csv, classes, D, w, h):
    order = {"normal": 0, "benign": 1, "in_situ": 2, "invasive": 3}
    p = np.zeros((h, w), np.uint8)
    yc = (np.arange(h) + 0.5) * D
    xc = (np.arange(w) + 0.5) * D
    with open(tiles_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            x, y, s = float(r["x"]), float(r["y"]), float(r["size"])
            probs = [float(r[f"prob_{c}"]) for c in classes]
            lab = order[classes[int(np.argmax(probs))]]
            p[np.ix_((yc >= y) & (yc < y + s), (xc >= x) & (xc < x + s))] = lab
    return p


def score(g, p):
    m = (g > 0) | (p > 0)
    err = np.abs(p.astype(int) - g.astype(int))[m].sum()
    mx = np.maximum(g, 3 - g.astype(int))[m].sum()
    return (1 - err / mx if mx else None), int(m.sum()), int(err), int(mx)


work = tempfile.mkdtemp(prefix="hp-eval-wsi-")
try:
    # ---- the hand-computed case ----
    xml = os.path.join(work, "H1.xml")
    write_xml(xml, [("Carcinoma invasive", [(0, 0), (256, 0), (256, 256), (0, 256)]),
                    ("In situ carcinoma", [(512, 0), (768, 0), (768, 128), (512, 128)]),
                    ("Benign", [(940, 940), (980, 940), (980, 980)])])  # holds no pixel centre
    f1 = fake_findings(os.path.join(work, "a", "H1"), "H1", 1024, 1024,
                       [(0, 0, 256, "in_situ"), (512, 512, 256, "benign")])
    out = os.path.join(work, "o-hand")
    rc, log = T.run("eval-wsi", "--truth", xml, "--findings", f1, "--downsample", 64, "--out", out)
    check(rc == 0, f"hand case: exit 0 ({log.strip()[-200:]})")
    doc = load(out)
    s = doc["slides"][0]
    check(abs(s["score"] - 4 / 7) < 1e-12 and s["error_sum"] == 48 and s["max_error_sum"] == 112
          and s["pixels_scored"] == 40 and s["pixels"] == 256 and s["raster"] == [16, 16],
          f"score 1 - 48/112 = 4/7 ({s['score']}), 40 of 256 pixels scored")
    cl = {c["class"]: c for c in s["classes"]}
    check(cl["invasive"]["truth_pixels"] == 16 and cl["invasive"]["dice"] == 0
          and cl["in_situ"]["truth_pixels"] == 8 and cl["in_situ"]["predicted_pixels"] == 16
          and cl["in_situ"]["dice"] == 0 and cl["benign"]["predicted_pixels"] == 16
          and cl["benign"]["truth_pixels"] == 0 and cl["benign"]["iou"] == 0,
          "per-class pixel counts, Dice and IoU of the hand case")
    # normal: truth 256-24 = 232, predicted 256-32 = 224, both 256-40 = 216 (the union of the
    # non-normal pixels: the invasive square, the in situ strip, the benign tile)
    check(cl["normal"]["both_pixels"] == 216 and abs(cl["normal"]["dice"] - 432 / 456) < 1e-12
          and abs(cl["normal"]["iou"] - 216 / 240) < 1e-12, "normal: Dice 432/456, IoU 216/240")
    check("eq. 1" in doc["definition"] and doc["slides_scored"] == 1, "the definition is recorded")
    for name in ["H1.truth.png", "H1.pred.png"]:
        check(os.path.isfile(os.path.join(out, "maps", name)), f"maps/{name} written")

    # A second, perfect slide: score 1; mean and pooled.
    xml2 = os.path.join(work, "H2.xml")
    write_xml(xml2, [("Invasive", [(0, 0), (256, 0), (256, 256), (0, 256)])])
    f2 = fake_findings(os.path.join(work, "a", "H2"), "H2", 1024, 1024, [(0, 0, 256, "invasive")])
    out2 = os.path.join(work, "o-two")
    rc, log = T.run("eval-wsi", "--truth", xml, xml2, "--findings", f1, f2, "--downsample", 64,
                    "--out", out2)
    d2 = load(out2) if rc == 0 else None
    check(rc == 0 and d2["slides"][1]["score"] == 1 and abs(d2["mean_score"] - (4 / 7 + 1) / 2) < 1e-12
          and abs(d2["pooled"]["score"] - (1 - 48 / (112 + 48))) < 1e-12,
          "a perfect slide scores 1; mean (4/7 + 1)/2; pooled 1 - 48/160")

    # ---- a generated slide, analysed ----
    slide = os.path.join(work, "W1.tiff")
    rc, log = T.run("synth", "--out", slide, "--size", "4096x4096", "--seed", 5, "--mpp", 0.25)
    check(rc == 0, "synth")
    rc, log = T.run("analyze", slide, "--model", T.MODEL, "--out", os.path.join(work, "an"),
                    "--slide-id", "W1")
    check(rc == 0, f"analyze ({log.strip()[-120:]})")
    findings = os.path.join(work, "an", "W1", "findings.json")
    with open(slide[:-5] + ".truth.geojson") as fh:
        gj = json.load(fh)
    spell = {"Benign": ("Benign", 1), "InSitu": ("Carcinoma in situ", 2), "Invasive": ("Carcinoma invasive", 3)}
    regions = []
    for ft in gj["features"]:
        name = ft["properties"]["classification"]["name"]
        if name not in spell:
            continue  # BACH draws only benign, in situ and invasive regions
        ring = [(float(x), float(y)) for x, y in ft["geometry"]["coordinates"][0][:-1]]
        regions.append((spell[name], ring))
    wxml = os.path.join(work, "W1.xml")
    write_xml(wxml, [(t, pts) for (t, _), pts in regions])
    fd = json.load(open(findings))
    classes = [c["name"] for c in fd["classes"]]
    W, H = fd["slide"]["level0_width_px"], fd["slide"]["level0_height_px"]
    osr = openslide.OpenSlide(slide)
    for label, args, D in [("downsample 32", ["--downsample", 32], 32.0),
                           ("level 1", ["--level", 1, "--slide", slide], osr.level_downsamples[1])]:
        o = os.path.join(work, f"o-gen-{label.replace(' ', '')}")
        rc, log = T.run("eval-wsi", "--truth", wxml, "--findings", findings, *args, "--out", o)
        check(rc == 0, f"generated slide, {label}: exit 0 ({log.strip()[-200:]})")
        if rc:
            continue
        s = load(o)["slides"][0]
        w, h = math.ceil(W / D), math.ceil(H / D)
        g = raster_truth([(c, pts) for (_, c), pts in regions], D, w, h)
        p = raster_pred(os.path.join(work, "an", "W1", "tiles.csv"), classes, D, w, h)
        ref, n, e, mx = score(g, p)
        check(s["raster"] == [w, h] and s["downsample"] == D and s["pixels_scored"] == n
              and s["error_sum"] == e and s["max_error_sum"] == mx and abs(s["score"] - ref) < 1e-12,
              f"{label}: score {s['score']:.4f} = numpy's {ref:.4f} ({n} pixels scored)")
        ok = True
        for k, c in enumerate(s["classes"]):
            both, tg, tp = int(((g == k) & (p == k)).sum()), int((g == k).sum()), int((p == k).sum())
            ok &= c["both_pixels"] == both and c["truth_pixels"] == tg and c["predicted_pixels"] == tp
            if tg + tp:
                ok &= abs(c["dice"] - 2 * both / (tg + tp)) < 1e-12 and abs(c["iou"] - both / (tg + tp - both)) < 1e-12
        check(ok, f"{label}: Dice and IoU per class = numpy's")
        print(f"note: {label}: invasive Dice {s['classes'][3]['dice']}, in situ Dice {s['classes'][2]['dice']}")
    osr.close()

    # ---- refusals ----
    def refused(args, what, *needles):
        o = os.path.join(work, "o-bad")
        rc, log = T.run("eval-wsi", *args, "--out", o)
        ok = rc == 1 and all(n in log for n in needles) and not os.path.exists(o) \
            and not os.path.exists(o + ".partial")
        check(ok, f"{what}: refused, nothing written ({log.strip()[-200:]})")

    text = open(wxml).read()
    bad = os.path.join(work, "bad.xml")
    with open(bad, "w") as fh:
        fh.write(text[: len(text) // 2])
    refused(["--truth", bad, "--findings", findings], "truncated XML", "bad.xml", "line", "not well-formed")
    write_xml(bad, [("Benign", [(0, 0), (5000, 10), (10, 10)])])
    refused(["--truth", bad, "--findings", findings], "a polygon outside the slide", "outside the slide",
            "region 1", "vertex 2")
    write_xml(bad, [("Tumor", [(0, 0), (10, 0), (10, 10)])])
    refused(["--truth", bad, "--findings", findings], "an unknown label", "'Tumor'", "no BACH class")
    write_xml(bad, [("Benign", [(0, 0), ("ten", 0), (10, 10)])])
    refused(["--truth", bad, "--findings", findings], "a vertex that is not a number", "vertex 2", "ten")
    write_xml(bad, [("Benign", [(0, 0), (10, 0)])])
    refused(["--truth", bad, "--findings", findings], "a two-vertex region", "2 vertices")
    write_xml(bad, [("Benign", [(0, 0), (10, 0), (10, 10)])], root="ASAP_Annotations")
    refused(["--truth", bad, "--findings", findings], "another root element", "not <Annotations>")
    fx = fake_findings(os.path.join(work, "a", "X"), "X", 1024, 1024, [(0, 0, 256, "tumour")],
                       classes=("stroma", "tumour"))
    refused(["--truth", xml, "--findings", fx], "findings of a non-BACH model", "stroma", "BACH")
    refused(["--truth", xml2, xml, "--findings", f1, f2], "truth and findings out of order", "H2.xml",
            "order")
    rc, log = T.run("eval-wsi", "--truth", xml, xml2, "--findings", f1, "--out", os.path.join(work, "o-c"))
    check(rc == 2, "two truth files and one findings file: usage error")
    before = open(os.path.join(out, "wsi-metrics.json")).read()
    rc, log = T.run("eval-wsi", "--truth", xml, "--findings", f1, "--out", out)
    check(rc == 1 and "--overwrite" in log and open(os.path.join(out, "wsi-metrics.json")).read() == before,
          "an existing OUT is refused and left as it was")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
