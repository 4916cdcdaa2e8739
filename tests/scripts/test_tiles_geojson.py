"""tiles.geojson: every analysed tile as a QuPath detection, checked against QuPath's GeoJSON
conventions (what File > Import objects from file reads in QuPath 0.3 and later) and against
tiles.csv, the per-tile table written by the same run.

Runs `histoplan synth` and `histoplan analyze` as a user does, then reads the file with Python's
json (strictly: NaN or Infinity, which QuPath's reader refuses, fail the test):
- a FeatureCollection of Features, one per row of tiles.csv, in the same order;
- geometry: a Polygon with one closed ring of 5 points, the tile's square in level-0 pixels
  (x, y, size from tiles.csv), with positive signed area in y-down pixels as regions.geojson;
- properties: objectType "detection" (QuPath makes detection objects, which its measurement maps
  colour), isLocked false, classification {name: the tile's top class in tiles.csv, color: three
  integers 0..255, the colour regions.geojson gives that class}; measurements an object of name
  to finite number with "Probability <class>" for every class (equal to tiles.csv's prob_ columns
  and summing to 1) and "Entropy"; no null measurement;
- histoplan.region_id equal to tiles.csv's region_id (null where empty), and findings.json names
  the file in outputs.tiles_geojson.
"""
import csv
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as t  # noqa: E402

check = t.Checks()


def no_constants(name):
    raise ValueError(f"non-finite number {name} in JSON")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        slide = os.path.join(tmp, "s.tiff")
        rc, log = t.run(["synth", "--out", slide, "--size", "6144x6144", "--seed", "1401"])
        check(rc == 0, "synth")
        fpath = t.analyze(tmp, slide, os.path.join(tmp, "out"))
        doc = t.load(fpath)
        d = os.path.dirname(fpath)
        check(doc["outputs"].get("tiles_geojson") == "tiles.geojson", "findings names tiles.geojson")
        classes = [c["name"] for c in doc["classes"]]
        with open(os.path.join(d, "tiles.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
        with open(os.path.join(d, "regions.geojson")) as fh:
            reg = json.load(fh)
        colour = {f["properties"]["classification"]["name"]: f["properties"]["classification"]["color"]
                  for f in reg["features"]}
        try:
            with open(os.path.join(d, "tiles.geojson")) as fh:
                gj = json.load(fh, parse_constant=no_constants)
        except ValueError as e:
            check(False, f"tiles.geojson is strict JSON: {e}")
            check.exit()
        check(gj.get("type") == "FeatureCollection", "a FeatureCollection")
        feats = gj.get("features", [])
        check(len(feats) == len(rows) and len(rows) > 50, f"{len(feats)} features = {len(rows)} tiles.csv rows")
        safe = [h[len("prob_"):] for h in rows[0] if h.startswith("prob_")] if rows else []
        bad = {}

        def fail(what, i):
            bad.setdefault(what, i)

        for i, (f, r) in enumerate(zip(feats, rows)):
            if f.get("type") != "Feature":
                fail("type Feature", i)
            g = f.get("geometry", {})
            ring = (g.get("coordinates") or [[]])[0]
            x, y, s = float(r["x"]), float(r["y"]), float(r["size"])
            if g.get("type") != "Polygon" or len(g.get("coordinates", [])) != 1 or len(ring) != 5:
                fail("a Polygon with one ring of 5 points", i)
                continue
            if ring[0] != ring[-1]:
                fail("ring closed", i)
            if sorted(map(tuple, ring[:4])) != sorted([(x, y), (x + s, y), (x, y + s), (x + s, y + s)]):
                fail("the tile's square from tiles.csv", i)
            area = sum(ring[k][0] * ring[k + 1][1] - ring[k + 1][0] * ring[k][1] for k in range(4)) / 2
            if not area > 0:
                fail("positive signed area in y-down pixels", i)
            p = f.get("properties", {})
            if p.get("objectType") != "detection":
                fail("objectType detection", i)
            if p.get("isLocked") is not False:
                fail("isLocked false", i)
            c = p.get("classification", {})
            if c.get("name") != r["top_class"]:
                fail("classification = tiles.csv top_class", i)
            col = c.get("color")
            if not (isinstance(col, list) and len(col) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in col)):
                fail("classification colour: three integers 0..255", i)
            elif c.get("name") in colour and col != colour[c["name"]]:
                fail("the class's colour in regions.geojson", i)
            m = p.get("measurements")
            if not isinstance(m, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                                  and not isinstance(v, bool) and math.isfinite(v)
                                                  for k, v in m.items()):
                fail("measurements: an object of name to finite number", i)
                continue
            probs = [m.get(f"Probability {n}") for n in classes]
            if any(v is None for v in probs):
                fail("a Probability measurement per class", i)
                continue
            if any(abs(v - float(r[f"prob_{sn}"])) > 1e-6 for v, sn in zip(probs, safe)):
                fail("probabilities = tiles.csv", i)
            if abs(sum(probs) - 1) > 1e-3:
                fail("probabilities sum to 1", i)
            if abs(m.get("Entropy", -1) - float(r["entropy"])) > 1e-6:
                fail("Entropy = tiles.csv", i)
            h = p.get("histoplan", {})
            if h.get("tile_index") != int(r["tile_index"]):
                fail("tile_index = tiles.csv", i)
            if h.get("region_id") != (r["region_id"] or None):
                fail("region_id = tiles.csv", i)
        for what in ["type Feature", "a Polygon with one ring of 5 points", "ring closed",
                     "the tile's square from tiles.csv", "positive signed area in y-down pixels",
                     "objectType detection", "isLocked false", "classification = tiles.csv top_class",
                     "classification colour: three integers 0..255", "the class's colour in regions.geojson",
                     "measurements: an object of name to finite number", "a Probability measurement per class",
                     "probabilities = tiles.csv", "probabilities sum to 1", "Entropy = tiles.csv",
                     "tile_index = tiles.csv", "region_id = tiles.csv"]:
            check(what not in bad, f"every feature: {what}" + (f" (first failure: feature {bad[what]})"
                                                                 if what in bad else ""))
        check(any(f["properties"]["histoplan"]["region_id"] for f in feats), "some tiles lie in regions")
    check.exit()


if __name__ == "__main__":
    main()
