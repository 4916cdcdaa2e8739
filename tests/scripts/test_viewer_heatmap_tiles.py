"""Heatmap layers as Deep Zoom tiles (GET /v1/slides/{id}/heatmaps...), on a generated slide that
`histoplan serve` analyzes:

- the layer list names each class of tiles.csv (its prob_<class> columns), "uncertainty" and
  "tissue" (the analysed tiles: 255 on each, transparent elsewhere);
- each layer's .dzi has the slide's own size, tile size and overlap (so the overlay aligns);
- at two Deep Zoom levels, for every analysed tile of tiles.csv whose centre falls inside a
  fetched heatmap tile, the PNG's grey value at that centre is round(255 x probability) from
  tiles.csv (at most 1 grey level apart: the server holds probabilities as 32-bit floats), and
  alpha is 255; where no tile was analysed alpha is 0;
- the uncertainty layer is entropy / ln(classes);
- refusals: an unknown layer, a JPEG name, path traversal, no token, another lab's token.
"""
import csv
import io
import math
import os
import shutil
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
try:
    import numpy as np
    from PIL import Image
except ImportError as e:
    T.skip(f"numpy or Pillow missing ({e})")

check = T.Checks()
contract = T.Contract(check)
tmp = T.tempdir("viewer-heatmaps")
data = os.path.join(tmp, "data")
roots = os.path.join(tmp, "slides")
os.makedirs(roots)
slide = T.synth(os.path.join(roots, "hm.tiff"), 2400, 1800, 21)
S1 = T.token(data, "submitter", "lab one")["token"]
S2 = T.token(data, "submitter", "lab two")["token"]
P = T.token(data, "pathologist", "dr reader")["token"]
log = os.path.join(tmp, "serve.log")
srv = T.serve(data, log, ["--slide-root", roots, "--rate-limit", "0", "--workers", "1"])
c = T.Client(srv.url, contract)
try:
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide}]}, {"Idempotency-Key": "h1"})
    check(r.status == 201, "batch accepted")
    bid = r.json()["id"]
    jid = r.json()["jobs"][0]["id"]
    b = T.wait_batch(c, S1, bid, 900)
    check(b["jobs"][0]["state"] == "succeeded", f"the analysis succeeded ({b['jobs'][0]['state']})")

    rows = list(csv.DictReader(io.StringIO(c("GET", f"/v1/jobs/{jid}/tiles.csv", S1).body.decode())))
    classes = [k[5:] for k in rows[0] if k.startswith("prob_")]
    r = c("GET", f"/v1/slides/{jid}/heatmaps", P)
    check(r.status == 200, f"layer list ({r.status})")
    layers = [x["name"] for x in r.json()["layers"]]
    check(layers == classes + ["uncertainty", "tissue"], f"layers are the classes, uncertainty and tissue: {layers}")
    kinds = [x["kind"] for x in r.json()["layers"]]
    check(kinds == ["class"] * len(classes) + ["uncertainty", "mask"], f"layer kinds {kinds}")

    slide_dzi = ET.fromstring(c("GET", f"/v1/slides/{jid}.dzi", S1).body)
    ns = "{http://schemas.microsoft.com/deepzoom/2008}"
    r = c("GET", f"/v1/slides/{jid}/heatmaps/{classes[-1]}.dzi", S1)
    hm_dzi = ET.fromstring(r.body)
    check(r.status == 200 and hm_dzi.get("Format") == "png" and
          hm_dzi.get("TileSize") == slide_dzi.get("TileSize") and hm_dzi.get("Overlap") == slide_dzi.get("Overlap") and
          hm_dzi.find(ns + "Size").attrib == slide_dzi.find(ns + "Size").attrib,
          "the heatmap's .dzi has the slide's size, tile size and overlap")

    W, H = int(slide_dzi.find(ns + "Size").get("Width")), int(slide_dzi.find(ns + "Size").get("Height"))
    dims = [(W, H)]
    while dims[-1] != (1, 1):
        dims.append((max(1, math.ceil(dims[-1][0] / 2)), max(1, math.ceil(dims[-1][1] / 2))))
    dims.reverse()
    top = len(dims) - 1
    T_, OV = 254, 1
    compared = mismatched = 0
    transparent_seen = False
    for level in (top, top - 2):
        lw, lh = dims[level]
        dx, dy = W / lw, H / lh
        cols, rows_n = math.ceil(lw / T_), math.ceil(lh / T_)
        for layer in classes + ["uncertainty", "tissue"]:
            tiles = {}
            for row in rows:
                cx = float(row["x"]) + float(row["size"]) / 2
                cy = float(row["y"]) + float(row["size"]) / 2
                zx, zy = int(cx / dx), int(cy / dy)
                col, rr = min(zx // T_, cols - 1), min(zy // T_, rows_n - 1)
                if (col, rr) not in tiles:
                    r = c("GET", f"/v1/slides/{jid}/heatmaps/{layer}_files/{level}/{col}_{rr}.png", S1)
                    if not check(r.status == 200 and r.ctype == "image/png", f"heatmap tile {layer} {level}/{col}_{rr}"):
                        continue
                    im = Image.open(io.BytesIO(r.body))
                    check(im.mode == "LA", f"8-bit grey and alpha ({im.mode})")
                    tiles[(col, rr)] = np.asarray(im)
                    if (tiles[(col, rr)][..., 1] == 0).any():
                        transparent_seen = True
                a = tiles.get((col, rr))
                if a is None:
                    continue
                px, py = zx - (col * T_ - (OV if col else 0)), zy - (rr * T_ - (OV if rr else 0))
                if layer == "uncertainty":
                    want = float(row["entropy"]) / math.log(len(classes))
                elif layer == "tissue":
                    want = 1.0
                else:
                    want = float(row[f"prob_{layer}"])
                want = round(min(1.0, max(0.0, want)) * 255)
                got, alpha = int(a[py, px, 0]), int(a[py, px, 1])
                compared += 1
                if abs(got - want) > 1 or alpha != 255:
                    mismatched += 1
                    if mismatched <= 5:
                        print(f"  {layer} level {level} tile {col}_{rr} pixel {px},{py}: grey {got} alpha {alpha}, "
                              f"tiles.csv {want} (tile {row['i']},{row['j']})")
    check(compared >= 2 * len(rows) and mismatched == 0,
          f"{compared} tile centres compared with tiles.csv, {mismatched} differ")
    check(transparent_seen, "where no tile was analysed the heatmap is transparent (alpha 0)")

    r = c("GET", f"/v1/slides/{jid}/heatmaps/{classes[0]}_files/{top}/0_0.png", S1)
    r2 = c("GET", f"/v1/slides/{jid}/heatmaps/{classes[0]}_files/{top}/0_0.png", S1,
           headers={"If-None-Match": r.headers.get("etag", "x")})
    check(r2.status == 304 and "private" in r.headers.get("cache-control", ""), "heatmap tiles: ETag and Cache-Control")
    for bad in [f"/v1/slides/{jid}/heatmaps/nosuchclass.dzi",
                f"/v1/slides/{jid}/heatmaps/{classes[0]}_files/{top}/0_0.jpeg",
                f"/v1/slides/{jid}/heatmaps/..%2F..%2Ftiles.csv.dzi",
                f"/v1/slides/{jid}/heatmaps/{classes[0]}_files/{top}/..%2F..%2Ftiles.csv",
                f"/v1/slides/{jid}/heatmaps/{classes[0]}_files/{top + 1}/0_0.png"]:
        check(c("GET", bad, S1).status == 404, f"{bad}: 404")
    check(c("GET", f"/v1/slides/{jid}/heatmaps").status == 401, "no token: 401")
    check(c("GET", f"/v1/slides/{jid}/heatmaps/{classes[0]}.dzi", S2).status == 404, "another lab: 404")
finally:
    srv.terminate()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
