"""The tile server of `histoplan serve` on the real Aperio slide CMU-1-Small-Region.svs:

- Deep Zoom: the .dzi descriptor and tiles at every level (corners, edges and a middle tile of
  each) against OpenSlide's own generator, python3-openslide's openslide.deepzoom
  DeepZoomGenerator(tile_size=254, overlap=1). Tile sizes must be identical. Pixels: both sides
  are JPEG at quality 75 (histoplan's tile as served; OpenSlide's tile encoded by Pillow, as
  OpenSlide's deep zoom server does), both decoded, and compared: the tolerance is a mean
  absolute difference of at most 0.5 grey levels per channel and at most 0.5% of the values
  differing by more than 8 (identical source pixels give identical JPEGs; the slack is for the
  last-bit rounding of the resampling filter, which JPEG then spreads over an 8x8 block).
- Caching: ETag, If-None-Match (304), Cache-Control private.
- IIIF Image API 3.0 level 1: /iiif/3/{id} redirects to info.json; info.json obeys the 3.0 rules
  (context, id, type, protocol, profile, sizes, tiles); image requests for a tile, w, / ,h / w,h
  sizes and their refusals (rotation, upscaling, format, a region outside the image).
- Refusals: no token (401), another lab's submitter (404), a file name, path traversal and
  malformed tile addresses in the URL (404).
Every response is checked against schemas/api.openapi.yaml.
"""
import io
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
try:
    import numpy as np
    import openslide
    from openslide.deepzoom import DeepZoomGenerator
    from PIL import Image
except ImportError as e:
    T.skip(f"python3-openslide, numpy or Pillow missing ({e})")

SLIDE = os.path.join(os.environ.get("HP_SHARED_DIR", ""), "data", "real", "slides",
                     "CMU-1-Small-Region.svs")
if not os.path.exists(SLIDE):
    T.skip(f"{SLIDE} is not there")

check = T.Checks()
contract = T.Contract(check)
tmp = T.tempdir("viewer-tiles")
data = os.path.join(tmp, "data")
sub1 = T.token(data, "submitter", "lab one")["token"]
sub2 = T.token(data, "submitter", "lab two")["token"]
path_ = T.token(data, "pathologist", "dr reader")["token"]
log = os.path.join(tmp, "serve.log")
# No workers: the job stays queued, and its slide is still the job's to view.
srv = T.serve(data, log, ["--slide-root", os.path.dirname(SLIDE), "--rate-limit", "0",
                          "--workers", "0", "--tile-cache-mb", "64"])
c = T.Client(srv.url, contract)

osr = openslide.OpenSlide(SLIDE)
dz = DeepZoomGenerator(osr, tile_size=254, overlap=1, limit_bounds=False)


def decode(b):
    return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)


def jpeg75(img):
    buf = io.BytesIO()
    img.save(buf, "jpeg", quality=75)
    return buf.getvalue()


try:
    r = c("POST", "/v1/batches", sub1, {"slides": [{"path": SLIDE}]}, {"Idempotency-Key": "t1"})
    check(r.status == 201, f"batch with the real slide accepted ({r.status})")
    jid = r.json()["jobs"][0]["id"]

    # -- the descriptor ----------------------------------------------------------------------
    r = c("GET", f"/v1/slides/{jid}.dzi", sub1)
    check(r.status == 200 and r.ctype.startswith("application/xml"), f".dzi answered ({r.status} {r.ctype})")
    ns = "{http://schemas.microsoft.com/deepzoom/2008}"
    ours = ET.fromstring(r.body)
    ref = ET.fromstring(dz.get_dzi("jpeg"))
    check(ours.tag == ref.tag and ours.attrib == ref.attrib and
          ours.find(ns + "Size").attrib == ref.find(ns + "Size").attrib,
          f".dzi equals openslide.deepzoom's: {ours.attrib} {ours.find(ns + 'Size').attrib}")

    # -- tiles at every level ------------------------------------------------------------------
    worst_mean, worst_frac, n_tiles, n_asked = 0.0, 0.0, 0, 0
    for level in range(dz.level_count):
        cols, rows = dz.level_tiles[level]
        picks = {(0, 0), (cols - 1, rows - 1), (cols // 2, rows // 2), (cols - 1, 0), (0, rows - 1)}
        n_asked += len(picks)
        for col, row in sorted(picks):
            r = c("GET", f"/v1/slides/{jid}_files/{level}/{col}_{row}.jpeg", sub1)
            if not check(r.status == 200 and r.ctype == "image/jpeg",
                         f"tile {level}/{col}_{row} answered ({r.status})"):
                continue
            mine = decode(r.body)
            theirs_img = dz.get_tile(level, (col, row))
            theirs = decode(jpeg75(theirs_img))
            if not check(mine.shape == theirs.shape,
                         f"tile {level}/{col}_{row}: size {mine.shape[1]}x{mine.shape[0]} is "
                         f"OpenSlide's {theirs.shape[1]}x{theirs.shape[0]}"):
                continue
            d = np.abs(mine - theirs)
            mean, frac = float(d.mean()), float((d > 8).mean())
            worst_mean, worst_frac = max(worst_mean, mean), max(worst_frac, frac)
            n_tiles += 1
            check(mean <= 0.5 and frac <= 0.005,
                  f"tile {level}/{col}_{row}: mean |diff| {mean:.3f}, {100 * frac:.2f}% over 8")
    print(f"{n_tiles} tiles over {dz.level_count} levels: worst mean |diff| {worst_mean:.3f}, "
          f"worst share over 8: {100 * worst_frac:.3f}%")
    check(n_tiles == n_asked and n_tiles > dz.level_count, f"{n_tiles} of {n_asked} tiles compared")

    # -- cache headers ---------------------------------------------------------------------------
    top = dz.level_count - 1
    url = f"/v1/slides/{jid}_files/{top}/1_1.jpeg"
    r1 = c("GET", url, sub1)
    r2 = c("GET", url, path_)
    etag = r1.headers.get("etag", "")
    check(re.fullmatch(r'"[0-9a-f]{16}"', etag) is not None, f"a strong ETag ({etag})")
    check(r2.status == 200 and r2.headers.get("etag") == etag and r2.body == r1.body,
          "the same tile again (from the cache): same bytes, same ETag; a pathologist sees it too")
    cc = r1.headers.get("cache-control", "")
    check("private" in cc and "max-age" in cc, f"Cache-Control private with max-age ({cc})")
    r = c("GET", url, sub1, headers={"If-None-Match": etag})
    check(r.status == 304 and not r.body and r.headers.get("etag") == etag and
          "no-store" not in r.headers.get("cache-control", ""), "If-None-Match with the ETag: 304")
    r = c("GET", url, sub1, headers={"If-None-Match": '"0000000000000000"'})
    check(r.status == 200, "If-None-Match with another ETag: 200")

    # -- refusals ------------------------------------------------------------------------------
    r = c("GET", f"/v1/slides/{jid}.dzi")
    check(r.status == 401, f"no token: 401 ({r.status})")
    r = c("GET", url)
    check(r.status == 401, f"a tile without a token: 401 ({r.status})")
    r = c("GET", f"/v1/slides/{jid}.dzi", "hp_" + "x" * 43)
    check(r.status == 401, "an unknown token: 401")
    r = c("GET", f"/v1/slides/{jid}.dzi", sub2)
    check(r.status == 404, f"another lab's submitter: 404 ({r.status})")
    r = c("GET", url, sub2)
    check(r.status == 404, f"another lab's submitter, a tile: 404 ({r.status})")
    name = os.path.basename(SLIDE)
    for bad in [f"/v1/slides/{name}.dzi", f"/v1/slides/{os.path.splitext(name)[0]}.dzi",
                "/v1/slides/..%2F..%2F..%2Fetc%2Fpasswd.dzi",
                f"/v1/slides/..%2Fslides%2F{name}_files/0/0_0.jpeg",
                f"/v1/slides/{jid}_files/..%2F..%2F/0_0.jpeg",
                f"/v1/slides/{jid}_files/0/..%2F..%2Fhistoplan.db",
                f"/v1/slides/{jid}_files/-1/0_0.jpeg", f"/v1/slides/{jid}_files/1e1/0_0.jpeg",
                f"/v1/slides/{jid}_files/{top}/0x1_0.jpeg", f"/v1/slides/{jid}_files/{top}/0_0.png",
                f"/v1/slides/{jid}_files/{top}/+1_0.jpeg", f"/v1/slides/{jid}_files/{top}/99_0.jpeg",
                f"/v1/slides/{jid}_files/{top + 1}/0_0.jpeg"]:
        r = c("GET", bad, sub1)
        check(r.status == 404 and r.ctype.startswith("application/problem+json") and
              name.encode() not in r.body, f"{bad}: 404 ({r.status})")

    # -- IIIF Image API 3.0 level 1 ------------------------------------------------------------
    r = c("GET", f"/iiif/3/{jid}", sub1)
    check(r.status == 303 and r.headers.get("location", "").endswith(f"/iiif/3/{jid}/info.json"),
          f"the base URI redirects to info.json ({r.status} {r.headers.get('location')})")
    r = c("GET", f"/iiif/3/{jid}/info.json", sub1)
    check(r.status == 200 and r.ctype.startswith("application/ld+json") and
          'profile="http://iiif.io/api/image/3/context.json"' in r.ctype,
          f"info.json as JSON-LD with the IIIF profile ({r.ctype})")
    info = r.json()
    W, H = osr.dimensions
    # IIIF Image API 3.0, section 5 (technical properties) and 5.5-5.6 (sizes, tiles).
    check(info.get("@context") == "http://iiif.io/api/image/3/context.json", "@context is the 3.0 context")
    check(info.get("id") == f"{srv.url}/iiif/3/{jid}", f"id is the base URI ({info.get('id')})")
    check(info.get("type") == "ImageService3", "type ImageService3")
    check(info.get("protocol") == "http://iiif.io/api/image", "protocol")
    check(info.get("profile") in ("level0", "level1", "level2") and info["profile"] == "level1", "profile level1")
    check(info.get("width") == W and info.get("height") == H, f"width and height are the slide's {W}x{H}")
    check(all(isinstance(info.get(k), int) and info[k] > 0 for k in ("width", "height", "maxWidth", "maxHeight")),
          "dimensions are positive integers")
    tiles = info.get("tiles", [])
    check(len(tiles) >= 1 and all(isinstance(t.get("width"), int) and t["width"] > 0 and
                                  isinstance(t.get("scaleFactors"), list) and t["scaleFactors"] and
                                  all(isinstance(f, int) and f > 0 for f in t["scaleFactors"])
                                  for t in tiles), "tiles: width and integer scaleFactors")
    sizes = info.get("sizes", [])
    check(sizes and all(0 < s["width"] <= W and 0 < s["height"] <= H for s in sizes),
          "sizes: none larger than the image")
    bad_keys = set(info) - {"@context", "id", "type", "protocol", "profile", "width", "height",
                            "maxWidth", "maxHeight", "maxArea", "sizes", "tiles", "preferredFormats",
                            "rights", "extraQualities", "extraFormats", "extraFeatures", "partOf",
                            "seeAlso", "service"}
    check(not bad_keys, f"no property outside the 3.0 rules ({bad_keys})")
    check(info.get("extraQualities") == ["color"], "extraQualities names color")

    # A tile as a IIIF client asks for it: scale factor 2, region 1024 x 1024 at (512, 512).
    t = tiles[0]
    tw, th = t["width"], t.get("height", t["width"])
    f = 2
    region = (tw * f, th * f, tw * f, th * f)
    r = c("GET", f"/iiif/3/{jid}/{','.join(map(str, region))}/{tw},/0/default.jpg", sub1)
    check(r.status == 200 and r.ctype == "image/jpeg", f"a IIIF tile ({r.status})")
    if r.status == 200:
        mine = decode(r.body)
        ref = osr.read_region(region[:2], 0, region[2:]).convert("RGB").resize((tw, th), Image.LANCZOS)
        d = np.abs(mine - decode(jpeg75(ref)))
        check(mine.shape == (th, tw, 3) and d.mean() <= 0.5,
              f"the IIIF tile is the region shrunk by Lanczos (mean |diff| {d.mean():.3f})")
        check("private" in r.headers.get("cache-control", "") and r.headers.get("etag"), "IIIF tiles are cached")
    r = c("GET", f"/iiif/3/{jid}/full/,300/0/default.jpg", sub1)
    check(r.status == 200 and decode(r.body).shape[0] == 300, "size ,h")
    r = c("GET", f"/iiif/3/{jid}/full/max/0/color.jpg", sub1)
    check(r.status == 200 and decode(r.body).shape[:2] == (H, W), "full/max at the slide's size")
    r = c("GET", f"/iiif/3/{jid}/square/100,100/0/default.jpg", sub1)
    check(r.status == 200 and decode(r.body).shape[:2] == (100, 100), "square region, size w,h")
    r = c("GET", f"/iiif/3/{jid}/{W - 10},{H - 10},100,100/max/0/default.jpg", sub1)
    check(r.status == 200 and decode(r.body).shape[:2] == (10, 10), "a region past the edge is cropped")
    for bad, field in [(f"full/max/90/default.jpg", "rotation"), (f"full/^max/0/default.jpg", "size"),
                       (f"0,0,10,10/20,/0/default.jpg", "size"), (f"full/max/0/default.png", "quality"),
                       (f"full/max/0/bitonal.jpg", "quality"), (f"{W},0,10,10/max/0/default.jpg", "region"),
                       (f"pct:0,0,10,10/max/0/default.jpg", "region"), (f"0,0,0,10/max/0/default.jpg", "region")]:
        r = c("GET", f"/iiif/3/{jid}/{bad}", sub1)
        check(r.status == 400 and r.json().get("field") == field, f"IIIF {bad}: 400 naming {field} ({r.status})")
    r = c("GET", f"/iiif/3/{jid}/info.json")
    check(r.status == 401, "info.json without a token: 401")
    r = c("GET", f"/iiif/3/{jid}/info.json", sub2)
    check(r.status == 404, "info.json for another lab's submitter: 404")
    r = c("GET", "/iiif/3/..%2F..%2Fetc/info.json", sub1)
    check(r.status == 404, "IIIF path traversal: 404")
finally:
    srv.terminate()

with open(log, "rb") as f:
    text = f.read()
check(os.path.basename(SLIDE).encode() not in text, "no log line names the slide's file")
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
