"""One identity per region: the id findings.json gives a region (R<n>) is the one every output uses.

A generated slide is analysed by `histoplan analyze` and reported by `histoplan report build`
(with the slide, so tissue thumbnails are made too); then, for every region of findings.json:
- regions.geojson: the feature its polygon_ref names carries the id as its name and as
  properties.histoplan.region_id, the region's class and the same tile count;
- regions.xml: one Annotation (not a hole) with that Name, in the group of its class, and the
  holes of that region named after it;
- tiles.csv: exactly tile_count rows carry the id in region_id, its evidence tiles among them,
  each with the region's class on top;
- tiles.geojson: the same tiles carry the id;
- report.json: the region listed under the same id with the same class and label, its thumbnails
  named after the id; the largest invasive focus named by id in findings and report alike;
- report.html: a row with the id (anchor region-<id>) and the id printed.
Ids are R1..Rn in the order of regions[], and labels ("invasive 2") are only labels.
"""
import csv
import json
import os
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402

ck = lib.Checks()


def main():
    with tempfile.TemporaryDirectory(prefix="hp-ids-") as tmp:
        slide = os.path.join(tmp, "s.tiff")
        rc, log = lib.run(["synth", "--out", slide, "--size", "6144x6144", "--seed", "1401"])
        if rc != 0:
            raise RuntimeError(log)
        fpath = lib.analyze(tmp, slide, os.path.join(tmp, "a"))
        d = os.path.dirname(fpath)
        f = lib.load(fpath)
        regions = f["regions"]
        ck(len(regions) >= 4, f"the slide has regions to compare ({len(regions)})")
        ck([r["id"] for r in regions] == [f"R{i + 1}" for i in range(len(regions))],
           "findings: ids are R1..Rn in the order of regions[]")
        ck(all(r["label"].startswith(r["class"] + " ") for r in regions), "findings: labels are class + number")

        gj = lib.load(os.path.join(d, f["outputs"]["regions_geojson"]))
        ok = True
        for r in regions:
            feat = gj["features"][r["polygon_ref"]["feature_index"]]
            p = feat["properties"]
            ok &= p["name"] == r["id"] and p["histoplan"]["region_id"] == r["id"] and \
                p["classification"]["name"] == r["class"] and p["measurements"]["Tiles"] == r["tile_count"]
        ck(ok, "regions.geojson: each region's feature is named by its id, with its class and tiles")

        root = ET.parse(os.path.join(d, f["outputs"]["regions_xml"])).getroot()
        anns = root.find("Annotations").findall("Annotation")
        outer = {a.get("Name"): a.get("PartOfGroup") for a in anns if a.get("PartOfGroup") != "Exclusion"}
        ck(outer == {r["id"]: r["class"] for r in regions},
           "regions.xml: one annotation per region, named by its id, in its class's group")
        holes = [a.get("Name") for a in anns if a.get("PartOfGroup") == "Exclusion"]
        ck(all(h.split(" hole ")[0] in outer for h in holes), f"regions.xml: holes named after their region ({len(holes)})")

        with open(os.path.join(d, f["outputs"]["tiles_csv"])) as fh:
            rows = list(csv.DictReader(fh))
        by_region = {}
        for row in rows:
            if row["region_id"]:
                by_region.setdefault(row["region_id"], []).append(row)
        ck(set(by_region) == {r["id"] for r in regions}, "tiles.csv: the region_id column names every region, no other")
        ok = True
        for r in regions:
            got = by_region.get(r["id"], [])
            idx = {int(x["tile_index"]) for x in got}
            ok &= len(got) == r["tile_count"] and all(t["index"] in idx for t in r["evidence_tiles"])
        ck(ok, "tiles.csv: each region's tile count and evidence tiles carry its id")

        if "tiles_geojson" in f["outputs"]:
            tg = lib.load(os.path.join(d, f["outputs"]["tiles_geojson"]))
            counts = {}
            for feat in tg["features"]:
                rid = feat["properties"]["histoplan"]["region_id"]
                if rid:
                    counts[rid] = counts.get(rid, 0) + 1
            ck(counts == {r["id"]: r["tile_count"] for r in regions}, "tiles.geojson: tiles carry their region's id")

        case = lib.case_file(tmp)
        out = os.path.join(tmp, "report")
        rc, log = lib.build(case, [fpath], out, ["--slide", slide])
        ck(rc == 0, f"report build ({rc}) {log[-300:] if rc else ''}")
        rep = lib.load(os.path.join(out, "report.json"))
        rr = rep["slides"][0]["regions"]
        ck([(x["region_id"], x["class"], x["label"]) for x in rr] == [(r["id"], r["class"], r["label"]) for r in regions],
           "report.json: the same ids, classes and labels")
        thumbs = [x for x in rr if x["thumbnail"]]
        ck(thumbs and all(x["thumbnail"]["file"].endswith(f"-{x['region_id']}.png") for x in thumbs) and
           all(x["tissue_thumbnail"]["file"].endswith(f"-{x['region_id']}-tissue.png") for x in thumbs if x["tissue_thumbnail"]),
           "report images: thumbnails named after the region id")
        if isinstance(f["invasive"], dict) and f["invasive"]["largest_region_id"]:
            ck(rep["case_findings"]["invasive"]["region_id"] == f["invasive"]["largest_region_id"],
               "the largest invasive focus has the same id in findings and report")
        with open(os.path.join(out, "report.html")) as h:
            page = h.read()
        ck(all(f'id="region-{r["id"]}"' in page and f">{r['id']}<" in page for r in regions),
           "report.html: a row per region, anchored and labelled by its id")
    ck.exit()


if __name__ == "__main__":
    main()
