"""The heatmap and region writers read back by independent readers.

The C test program, run as `test_heatmap_regions --fixture DIR`, writes every output of one
hand-made scenario (a 6000 x 5000 slide at 0.25 um/px, 14 x 12 tiles of 448 px, four classes:
an invasive square with a normal hole, an in situ patch, two benign tiles touching at a corner,
normal tissue around, background outside an ellipse) plus expected.json (the grid it used).
This script generates its own folder, so it depends on no other test, then checks:

- heatmap.tiff with OpenSlide (python3-openslide): vendor aperio, MPP = slide MPP x downsample,
  level sizes, the colour at tile centres (top class colour mixed with white by probability),
  white where nothing was analysed;
- heatmap_<class>.png, overlay.png, mask.png with PIL: sizes of the picture (the legend band's
  layout, from the PNG's "histoplan:legend" text chunk, says where it is), viridis ends, blend,
  mask values;
- regions.geojson with json: FeatureCollection, QuPath's fields, rings closed, simple (an O(n^2)
  segment intersection check), holes inside and areas matching the measurements;
- regions.xml with xml.etree: ASAP's structure, groups, ordered coordinates;
- tiles.csv with csv: header, one row per analysed tile, probabilities sum to 1, entropy.
"""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

try:
    import openslide
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: PIL or openslide not available ({e})")
    sys.exit(77)

failures = 0


def map_size(im):
    """The picture's size inside a PNG with a legend band (its "histoplan:legend" layout)."""
    lay = json.loads(im.info.get("histoplan:legend", "null") or "null")
    return tuple(lay["map"]) if lay else None


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def ring_area(ring):
    return sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1]
               for i in range(len(ring) - 1)) / 2.0


def segments_cross(p1, p2, q1, q2):
    """True when closed segments p1p2 and q1q2 share a point."""
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 0) - (v < 0)

    def on_seg(a, b, c):
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    o1, o2, o3, o4 = orient(p1, p2, q1), orient(p1, p2, q2), orient(q1, q2, p1), orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and on_seg(p1, p2, q1)) or (o2 == 0 and on_seg(p1, p2, q2)) or
            (o3 == 0 and on_seg(q1, q2, p1)) or (o4 == 0 and on_seg(q1, q2, p2)))


def ring_simple(ring):
    """No two non-adjacent edges of a closed ring meet; adjacent ones meet only at their joint."""
    n = len(ring) - 1
    if len(set(map(tuple, ring[:-1]))) != n:
        return False
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if segments_cross(ring[i], ring[i + 1], ring[j], ring[j + 1]):
                return False
    return True


def point_in_ring(pt, ring):
    x, y = pt
    inside = False
    for i in range(len(ring) - 1):
        (x1, y1), (x2, y2) = ring[i], ring[i + 1]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def main():
    build = os.environ.get("HP_BUILD_DIR", "build")
    exe = os.path.join(build, "tests", "test_heatmap_regions")
    if not os.path.exists(exe):
        print(f"FAIL: {exe} is not built")
        return 1
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([exe, "--fixture", d], capture_output=True, text=True)
        check(r.returncode == 0, f"fixture written ({r.stderr.strip()})")
        if r.returncode:
            return 1
        with open(os.path.join(d, "expected.json")) as f:
            ex = json.load(f)
        gw, gh, ts, mpp, D = ex["gw"], ex["gh"], ex["tile_size"], ex["mpp"], ex["downsample"]
        C = len(ex["classes"])
        prob = ex["prob"]

        def p(t, k):
            return prob[t * C + k]

        analysed = [p(t, 0) is not None for t in range(gw * gh)]
        top = [max(range(C), key=lambda k: (p(t, k), -k)) if analysed[t] else -1
               for t in range(gw * gh)]
        # Tiles worth probing: one per class at probability >= 0.85, and background.
        probes = {}
        for t in range(gw * gh):
            if analysed[t] and p(t, top[t]) >= 0.85 and top[t] not in probes:
                probes[top[t]] = t
        bg = next(t for t in range(gw * gh) if not analysed[t])

        def tile_rgb(t):
            k = top[t]
            pk = p(t, k)
            return [round(255 - pk * (255 - c)) for c in ex["classes"][k]["color"]]

        # ---- heatmap.tiff through OpenSlide ----
        s = openslide.OpenSlide(os.path.join(d, "heatmap.tiff"))
        props = s.properties
        check(props.get("openslide.vendor") == "aperio", "heatmap.tiff: vendor aperio")
        check(abs(float(props["openslide.mpp-x"]) - mpp * D) < 1e-6 and
              abs(float(props["openslide.mpp-y"]) - mpp * D) < 1e-6,
              f"heatmap.tiff: MPP {props.get('openslide.mpp-x')} = {mpp} x {D}")
        check(props.get("aperio.HeatmapDownsample") == str(D), "heatmap.tiff: downsample recorded")
        w0 = -(-ex["slide_w"] // D)
        h0 = -(-ex["slide_h"] // D)
        check(s.level_dimensions[0] == (w0, h0), f"heatmap.tiff: level 0 {s.level_dimensions[0]} = {(w0, h0)}")
        check(s.level_count >= 2, f"heatmap.tiff: pyramid of {s.level_count} levels")
        for l in range(1, s.level_count):
            pw, ph = s.level_dimensions[l - 1]
            check(s.level_dimensions[l] == (-(-pw // 2), -(-ph // 2)), f"heatmap.tiff: level {l} halves")
        for k, t in sorted(probes.items()) + [(-1, bg)]:
            i, j = t % gw, t // gw
            # read_region takes level-0 coordinates of the heatmap: slide pixels / D.
            x, y = int((i + 0.5) * ts / D), int((j + 0.5) * ts / D)
            got = list(s.read_region((x, y), 0, (1, 1)).convert("RGB").getpixel((0, 0)))
            want = tile_rgb(t) if k >= 0 else [255, 255, 255]
            check(max(abs(a - b) for a, b in zip(got, want)) <= 6,
                  f"heatmap.tiff: tile ({i},{j}) class {k}: {got} ~ {want}")
            low = s.level_count - 1
            ds = s.level_downsamples[low]
            got = list(s.read_region((x, y), low, (1, 1)).convert("RGB").getpixel((0, 0)))
            check(max(abs(a - b) for a, b in zip(got, want)) <= 40,
                  f"heatmap.tiff: level {low} (x{ds:g}) tile ({i},{j}) {got} ~ {want}")
        s.close()

        # ---- PNGs through PIL ----
        for k, c in enumerate(ex["classes"]):
            path = os.path.join(d, f"heatmap_{c['safe']}.png")
            check(os.path.exists(path), f"{os.path.basename(path)} exists")
            im = Image.open(path)
            check(im.mode == "RGB" and map_size(im) == (gw * 4, gh * 4), f"{c['safe']}: RGB {map_size(im)}")
            px = im.load()
            check(px[(bg % gw) * 4 + 1, (bg // gw) * 4 + 1] == (255, 255, 255), f"{c['safe']}: background white")
            # Luminance rises with probability (viridis is monotone in lightness).
            pts = sorted((p(t, k), t) for t in range(gw * gh) if analysed[t])
            lo, hi = pts[0][1], pts[-1][1]
            lum = [sum(px[(t % gw) * 4 + 1, (t // gw) * 4 + 1]) for t in (lo, hi)]
            if pts[0][0] < pts[-1][0]:
                check(lum[0] < lum[1], f"{c['safe']}: brighter where more probable {lum}")
        im = Image.open(os.path.join(d, "heatmap_invasive.png")).load()
        t = probes[3]
        check(max(abs(a - b) for a, b in zip(im[(t % gw) * 4, (t // gw) * 4], (253, 231, 37))) <= 40,
              "heatmap_invasive: a sure tile is near viridis' yellow end")
        mask = Image.open(os.path.join(d, "mask.png"))
        check(mask.mode == "RGB" and map_size(mask) == (gw, gh), f"mask.png: {map_size(mask)}")
        mp = mask.load()
        check(all(mp[t % gw, t // gw] == ((255,) * 3 if analysed[t] else (0,) * 3) for t in range(gw * gh)),
              "mask.png: white exactly on analysed tiles")
        ov = Image.open(os.path.join(d, "overlay.png"))
        th = Image.open(os.path.join(d, "thumb.png")).load()
        check(ov.mode == "RGB" and map_size(ov) == (600, 500), f"overlay.png: RGB {map_size(ov)}")
        ovp = ov.load()
        sx, sy = ex["slide_w"] / 600, ex["slide_h"] / 500
        for k, t in sorted(probes.items()) + [(-1, bg)]:
            i, j = t % gw, t // gw
            u, v = int((i + 0.5) * ts / sx), int((j + 0.5) * ts / sy)
            if k < 0:
                check(ovp[u, v] == th[u, v], "overlay.png: the bare thumbnail on background")
                continue
            a = 0.5 * p(t, k)
            want = [round((1 - a) * b + a * c) for b, c in zip(th[u, v], ex["classes"][k]["color"])]
            check(max(abs(x - y) for x, y in zip(ovp[u, v], want)) <= 1,
                  f"overlay.png: class {k} blended {ovp[u, v]} ~ {want}")

        # ---- regions.geojson ----
        with open(os.path.join(d, "regions.geojson")) as f:
            gj = json.load(f)
        check(gj.get("type") == "FeatureCollection", "geojson: FeatureCollection")
        feats = gj.get("features", [])
        check(len(feats) == ex["regions"], f"geojson: {len(feats)} features = {ex['regions']} regions")
        names = {c["name"]: c for c in ex["classes"]}
        per_class = {}
        all_ok = True
        tile_area = ts * ts
        for ft in feats:
            pr, geo = ft["properties"], ft["geometry"]
            ok = (ft.get("type") == "Feature" and pr.get("objectType") == "annotation" and
                  geo.get("type") in ("Polygon", "MultiPolygon") and
                  pr["classification"]["name"] in names and
                  pr["classification"]["color"] == names[pr["classification"]["name"]]["color"] and
                  all(isinstance(pr["measurements"][m], (int, float)) for m in
                      ("Area mm2", "Largest diameter mm", "Mean probability", "Max probability")))
            rings = geo["coordinates"]
            for ring in rings:
                ok = ok and len(ring) >= 4 and ring[0] == ring[-1] and ring_simple(ring)
            ok = ok and ring_area(rings[0]) > 0 and all(ring_area(h) < 0 for h in rings[1:])
            # Holes inside the shell: the midpoint of each hole's first edge, nudged inwards.
            for h in rings[1:]:
                mx, my = (h[0][0] + h[1][0]) / 2, (h[0][1] + h[1][1]) / 2
                ok = ok and point_in_ring((mx + 0.5, my + 0.5), rings[0])
            area = sum(ring_area(r) for r in rings)
            ntiles = pr["measurements"]["Tiles"]
            ok = ok and abs(area - ntiles * tile_area) < 1e-6
            ok = ok and abs(pr["measurements"]["Area mm2"] - area * (mpp * 1e-3) ** 2) < 1e-9
            ev = pr["histoplan"]["evidence_tiles"]
            ok = ok and len(ev) == ntiles and all(top[t] >= 0 for t in ev)
            k = pr["histoplan"]["class_index"]
            ok = ok and abs(pr["measurements"]["Max probability"] - max(p(t, k) for t in ev)) < 1e-6
            pts = [pt for pt in rings[0][:-1]]
            diam = max(math.dist(a, b) for a in pts for b in pts) * mpp * 1e-3
            ok = ok and abs(pr["measurements"]["Largest diameter mm"] - diam) < 1e-9
            if not ok:
                print("bad feature:", json.dumps(pr)[:300])
            all_ok = all_ok and ok
            per_class.setdefault(pr["classification"]["name"], []).append(ft)
        check(all_ok, "geojson: QuPath fields, closed simple rings, holes inside, areas and diameters")
        inv = per_class.get("invasive", [])
        check(len(inv) == 1 and len(inv[0]["geometry"]["coordinates"]) == 2,
              "geojson: the invasive square has one hole")
        check(len(per_class.get("benign", [])) == 2, "geojson: corner-touching benign tiles are two regions")

        # ---- regions.xml (ASAP) ----
        root = ET.parse(os.path.join(d, "regions.xml")).getroot()
        check(root.tag == "ASAP_Annotations", "xml: root ASAP_Annotations")
        anns = root.findall("./Annotations/Annotation")
        groups = {g.get("Name"): g for g in root.findall("./AnnotationGroups/Group")}
        nrings = sum(len(ft["geometry"]["coordinates"]) for ft in feats)
        check(len(anns) == nrings, f"xml: {len(anns)} annotations = {nrings} rings")
        ok = True
        for a in anns:
            coords = a.findall("./Coordinates/Coordinate")
            ok = ok and a.get("Type") == "Polygon" and a.get("PartOfGroup") in groups
            ok = ok and a.get("Color", "").startswith("#") and len(a.get("Color")) == 7
            ok = ok and [int(c.get("Order")) for c in coords] == list(range(len(coords)))
            ok = ok and len(coords) >= 3 and all(float(c.get("X")) >= 0 and float(c.get("Y")) >= 0 for c in coords)
        for name, g in groups.items():
            ok = ok and g.get("PartOfGroup") == "None" and g.find("Attributes") is not None
            if name in names:
                want = "#%02x%02x%02x" % tuple(names[name]["color"])
                ok = ok and g.get("Color") == want
        check(ok, "xml: Polygon annotations in declared groups, ordered coordinates, class colours")
        check("Exclusion" in groups and
              sum(a.get("PartOfGroup") == "Exclusion" for a in anns) == nrings - len(feats),
              "xml: holes as Exclusion annotations")
        shell = [a for a in anns if a.get("PartOfGroup") == "invasive"]
        if shell and inv:
            xs = [[float(c.get("X")), float(c.get("Y"))] for c in shell[0].findall("./Coordinates/Coordinate")]
            check(xs == inv[0]["geometry"]["coordinates"][0][:-1], "xml: same outline as the GeoJSON")

        # ---- tiles.csv ----
        with open(os.path.join(d, "tiles.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
            f.seek(0)
            header = next(csv.reader(f))
        want_header = (["tile_index", "i", "j", "x", "y", "size", "tissue_fraction"] +
                       ["prob_" + c["safe"] for c in ex["classes"]] + ["entropy", "top_class", "region_id", "ood_score", "super_resolved"])
        check(header == want_header, f"csv: header {header}")
        check(all(h.replace("_", "").isalnum() for h in header), "csv: file-safe column names")
        check(len(rows) == sum(analysed), f"csv: {len(rows)} rows = analysed tiles {sum(analysed)}")
        ok = True
        for row in rows:
            t, i, j = int(row["tile_index"]), int(row["i"]), int(row["j"])
            ps = [float(row["prob_" + c["safe"]]) for c in ex["classes"]]
            ent = -sum(q * math.log(q) for q in ps if q > 0) / math.log(C)
            ok = ok and t == j * gw + i and analysed[t]
            ok = ok and float(row["x"]) == i * ts and float(row["y"]) == j * ts and float(row["size"]) == ts
            ok = ok and abs(sum(ps) - 1) < 1e-4 and abs(float(row["entropy"]) - ent) < 1e-4
            ok = ok and 0 <= float(row["tissue_fraction"]) <= 1
            ok = ok and row["top_class"] == ex["classes"][top[t]]["name"]
        check(ok, "csv: indices, coordinates, probabilities sum to 1, entropy, top class")
        leftovers = [n for n in os.listdir(d) if n.startswith(".") or "tmp" in n]
        check(not leftovers, f"no temporary files left ({leftovers})")

    print("test_writers_readback.py:", "FAILED (%d failures)" % failures if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
