"""`histoplan analyze` end to end, checked by independent readers (jsonschema, json, openslide,
PIL, numpy):

- a generated slide (6144 px at 0.25 um/px; class regions >= 5 tiles across at 0.5 um/px) with
  the default model: Dice per class between the tile class map (argmax of tiles.csv) and the
  truth rasterized to the same grid (majority label over each tile; tiles under 50% tissue in
  the truth left out) is >= 0.85;
- findings.json validates against schemas/findings.schema.json; regions.geojson rings are
  closed and simple; heatmap.tiff opens in OpenSlide; nothing under OUT names the slide file;
- the same results with one reader thread; a rerun without --overwrite keeps the result (the
  slide is skipped) and changes nothing; --overwrite replaces the folder;
- a batch whose second slide is truncated: exit 1, the first completes, batch-summary.json
  records the failure (with its category, no file name); a rerun skips the completed slide;
- a plain TIFF without resolution: an error naming --mpp, then success with --mpp 0.5;
- an all-white TIFF with MPP: completes with the low-tissue flag and no regions;
- CMU-1-Small-Region.svs (when $HP_SHARED_DIR has it): completes, valid findings and polygons.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import jsonschema
    import numpy as np
    import openslide
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema, numpy, PIL or openslide not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(SRC, "..", "shared"))
MODEL = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def run(*args):
    cmd = ["nice", "-n", "19", HP_BIN] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def analyze(*args):
    return run("analyze", "--model", MODEL, *args)


with open(os.path.join(SRC, "schemas", "findings.schema.json")) as fh:
    SCHEMA = json.load(fh)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def valid_findings(path, what):
    with open(path) as fh:
        doc = json.load(fh)
    errs = sorted(VALIDATOR.iter_errors(doc), key=str)
    check(not errs, f"{what}: findings.json validates against the schema"
          + (f" ({errs[0].message} at {list(errs[0].path)})" if errs else ""))
    return doc


def segments_cross(a, b, c, d):
    def orient(p, q, r):
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (v > 0) - (v < 0)
    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    return o1 * o2 < 0 and o3 * o4 < 0


def ring_ok(ring):
    if len(ring) < 4 or ring[0] != ring[-1]:
        return False
    pts = [tuple(p) for p in ring[:-1]]
    if len(set(pts)) != len(pts):
        return False
    n = len(pts)
    if n > 400:  # large rings: closed and without repeated vertices is checked
        return True
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if segments_cross(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]):
                return False
    return True


def valid_geojson(path, what):
    with open(path) as fh:
        gj = json.load(fh)
    ok = gj.get("type") == "FeatureCollection"
    for f in gj["features"]:
        ok = ok and f["geometry"]["type"] == "Polygon"
        ok = ok and all(ring_ok(r) for r in f["geometry"]["coordinates"])
    check(ok, f"{what}: regions.geojson parses, {len(gj['features'])} polygons closed and simple")
    return gj


def read_tiles(path):
    with open(path) as fh:
        head = fh.readline().strip().split(",")
        rows = [line.rstrip("\n").split(",") for line in fh if line.strip()]
    pcols = [k for k, h in enumerate(head) if h.startswith("prob_")]
    out = {}
    for r in rows:
        probs = [float(r[k]) for k in pcols]
        out[(int(r[1]), int(r[2]))] = (int(np.argmax(probs)), int(r[3]), int(r[4]), float(r[5]))
    return [head[k][5:] for k in pcols], out


def check_uncertainty_map(sdir, doc):
    """uncertainty.png shows each tile's entropy: same geometry as the class heatmaps, and tiles
    the model is less sure of (higher entropy in tiles.csv) are brighter in viridis."""
    # The picture is the top-left part the legend's layout (PNG text "histoplan:legend") names.
    def picture(name):
        im = Image.open(os.path.join(sdir, name))
        mw, mh = json.loads(im.info["histoplan:legend"])["map"]
        return np.asarray(im.convert("RGB"), dtype=float)[:mh, :mw]
    unc = picture("uncertainty.png")
    ref = picture("heatmap_invasive.png")
    check(unc.shape == ref.shape,
          f"uncertainty.png has the heatmaps' size ({unc.shape[1]}x{unc.shape[0]})")
    gw = doc["analysis"]["grid_w"]
    px = unc.shape[1] // gw
    with open(os.path.join(sdir, "tiles.csv")) as fh:
        head = fh.readline().strip().split(",")
        rows = [line.rstrip("\n").split(",") for line in fh if line.strip()]
    ei = head.index("entropy")
    pairs = []
    for r in rows:
        i, j, e = int(r[1]), int(r[2]), float(r[ei])
        c = unc[j * px + px // 2, i * px + px // 2]
        pairs.append((e, 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]))
    pairs.sort()
    q = max(1, len(pairs) // 4)
    low = np.mean([l for _, l in pairs[:q]])
    high = np.mean([l for _, l in pairs[-q:]])
    check(pairs[-1][0] - pairs[0][0] < 1e-6 or high > low,
          f"less certain tiles are brighter in uncertainty.png ({low:.0f} -> {high:.0f})")


def snapshot(folder):
    snap = {}
    for p in sorted(glob.glob(os.path.join(folder, "**"), recursive=True)):
        if os.path.isfile(p):
            st = os.stat(p)
            with open(p, "rb") as fh:
                snap[p] = (st.st_mtime_ns, fh.read())
    return snap


tmp = tempfile.mkdtemp(prefix="hp_analyze_")
try:
    slide = os.path.join(tmp, "patient_smith_4711.tiff")
    rc, log = run("synth", "--out", slide, "--size", "6144x6144", "--seed", "1401", "--mpp", "0.25")
    check(rc == 0, "synth wrote the test slide")
    out = os.path.join(tmp, "out")

    rc, log = run("analyze")
    check(rc == 2, "analyze without a slide is a usage error (exit 2)")

    rc, log = analyze(slide, "--out", out, "--case", "S26-000001")
    print(log)
    check(rc == 0, "analyze completed on the synthetic slide")
    dirs = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))]
    check(len(dirs) == 1 and len(dirs[0]) == 12 and all(c in "0123456789abcdef" for c in dirs[0]),
          f"one output folder named by 12 hex digits of the hash ({dirs})")
    sdir = os.path.join(out, dirs[0])
    expect = ["findings.json", "heatmap.tiff", "mask.png", "overlay.png", "uncertainty.png", "regions.geojson",
              "regions.xml", "tiles.csv", "heatmap_normal.png", "heatmap_benign.png",
              "heatmap_in_situ.png", "heatmap_invasive.png"]
    check(all(os.path.isfile(os.path.join(sdir, e)) for e in expect), "every output file exists")
    doc = valid_findings(os.path.join(sdir, "findings.json"), "synthetic slide")
    check(doc.get("slide", {}).get("slide_id") == dirs[0], "findings slide_id is the folder name")
    valid_geojson(os.path.join(sdir, "regions.geojson"), "synthetic slide")
    try:
        hs = openslide.OpenSlide(os.path.join(sdir, "heatmap.tiff"))
        check(hs.dimensions[0] > 0, f"heatmap.tiff opens in OpenSlide ({hs.dimensions})")
        hs.close()
    except Exception as e:  # noqa: BLE001
        check(False, f"heatmap.tiff opens in OpenSlide ({e})")
    for png in ("overlay.png", "mask.png", "heatmap_invasive.png"):
        Image.open(os.path.join(sdir, png)).load()
    check(doc.get("outputs", {}).get("uncertainty") == "uncertainty.png", "findings names uncertainty.png")
    check_uncertainty_map(sdir, doc)

    # Dice per class against the truth on the same tile grid.
    classes, tiles = read_tiles(os.path.join(sdir, "tiles.csv"))
    truth = np.array(Image.open(slide[:-5] + ".truth.png"))
    with open(slide[:-5] + ".truth.json") as fh:
        ts = json.load(fh)["truth_scale"]
    size = doc["analysis"]["tile_size_level0"] if "analysis" in doc else 448
    gw, gh = doc["analysis"]["grid_w"], doc["analysis"]["grid_h"]
    H, W = truth.shape
    # Full-resolution label per truth block; area of tile over blocks.
    tmap = {}
    for j in range(gh):
        for i in range(gw):
            x0, y0 = round(i * size), round(j * size)
            x1, y1 = min(x0 + round(size), 6144), min(y0 + round(size), 6144)
            counts = np.zeros(5)
            for by in range(y0 // ts, (y1 - 1) // ts + 1):
                oy = min(y1, (by + 1) * ts) - max(y0, by * ts)
                for bx in range(x0 // ts, (x1 - 1) // ts + 1):
                    ox = min(x1, (bx + 1) * ts) - max(x0, bx * ts)
                    counts[truth[min(by, H - 1), min(bx, W - 1)]] += ox * oy
            total = round(size) ** 2
            if counts[1:].sum() >= 0.5 * total:
                tmap[(i, j)] = int(np.argmax(counts[1:]))
    dice = {}
    for c, name in enumerate(classes):
        t = {k for k, v in tmap.items() if v == c}
        p = {k for k in tmap if k in tiles and tiles[k][0] == c}
        dice[name] = 2 * len(t & p) / max(1, len(t) + len(p))
    print("Dice per class:", {k: round(v, 4) for k, v in dice.items()},
          f"over {len(tmap)} truth tiles, {len(tiles)} analysed")
    check(all(v >= 0.85 for v in dice.values()), "Dice of every class >= 0.85")

    # No output path or file names the slide file.
    leak = [p for p in glob.glob(os.path.join(out, "**"), recursive=True) if "smith" in p]
    for p in glob.glob(os.path.join(out, "**"), recursive=True):
        if os.path.isfile(p):
            with open(p, "rb") as fh:
                if b"smith" in fh.read().lower():
                    leak.append(p)
    check(not leak, f"no output path or content names the slide file ({leak[:3]})")

    # One reader thread gives the same tiles.
    rc, _ = analyze(slide, "--out", os.path.join(tmp, "out1"), "--threads", "1")
    with open(os.path.join(tmp, "out1", dirs[0], "tiles.csv"), "rb") as a, \
            open(os.path.join(sdir, "tiles.csv"), "rb") as b:
        check(rc == 0 and a.read() == b.read(), "--threads 1 gives the same tiles.csv")

    # Rerun with the same model and options: kept (skipped), nothing touched; --overwrite replaces.
    before = snapshot(out)
    rc, log = analyze(slide, "--out", out, "--case", "S26-000001")
    check(rc == 0 and "skipped" in log and "--overwrite" in log,
          f"a rerun without --overwrite keeps the completed result ({log.strip()[:160]})")
    # Nothing is rewritten, not even batch-summary.json: its entry for the slide stays "done".
    check(snapshot(out) == before, "the skipped rerun left every file untouched")
    rc, log = analyze(slide, "--out", out, "--case", "S26-000001", "--overwrite")
    check(rc == 0 and os.path.isfile(os.path.join(sdir, "findings.json"))
          and not os.path.exists(sdir + ".partial"), "--overwrite reruns and replaces the folder")

    # Batch with a truncated second slide, then resume.
    trunc = os.path.join(tmp, "truncated_jones.tiff")
    with open(slide, "rb") as fh:
        data = fh.read()
    with open(trunc, "wb") as fh:
        fh.write(data[: len(data) // 3])
    bout = os.path.join(tmp, "batch")
    rc, log = analyze(slide, trunc, "--out", bout)
    check(rc == 1, "a batch with a truncated slide exits 1")
    check(os.path.isfile(os.path.join(bout, dirs[0], "findings.json")), "the first slide completed")
    with open(os.path.join(bout, "batch-summary.json")) as fh:
        text = fh.read()
    print(text)
    summ = json.loads(text)
    r = summ["results"]
    check(len(r) == 2 and r[0]["status"] == "done" and r[1]["status"] == "failed"
          and r[1]["error"] in ("unreadable", "unsupported") and r[1]["message"],
          f"batch summary records the failure ({r[1]})")
    check("jones" not in text and "smith" not in text, "batch summary names no file")
    check(not [d for d in os.listdir(bout) if d.endswith(".partial")], "no .partial folder left")
    rc, log = analyze(slide, trunc, "--out", bout)
    with open(os.path.join(bout, "batch-summary.json")) as fh:
        r = json.load(fh)["results"]
    check(rc == 1 and "slide 1/2 " + dirs[0] + ": skipped" in log and len(r) == 2
          and r[0]["status"] == "done" and r[1]["status"] == "failed",
          "a rerun of the batch skips the completed slide (the summary keeps the run that made it)")

    # A plain TIFF without resolution tags: error naming --mpp, then --mpp 0.5.
    osl = openslide.OpenSlide(slide)
    region = osl.read_region((1024, 1024), 1, (1280, 1280)).convert("RGB")
    osl.close()
    nompp = os.path.join(tmp, "nompp.tif")
    region.save(nompp)
    rc, log = analyze(nompp, "--out", os.path.join(tmp, "o_nompp"))
    check(rc == 1 and "--mpp" in log, f"no MPP: an error naming --mpp ({log.strip()[-160:]})")
    rc, log = analyze(nompp, "--out", os.path.join(tmp, "o_nompp"), "--mpp", "0.5")
    check(rc == 0, "no MPP: success with --mpp 0.5")
    fj = glob.glob(os.path.join(tmp, "o_nompp", "*", "findings.json"))
    if fj:
        valid_findings(fj[0], "--mpp 0.5")

    # All background.
    white = os.path.join(tmp, "white.tif")
    Image.new("RGB", (2048, 2048), (255, 255, 255)).save(white, dpi=(50800, 50800))
    rc, log = analyze(white, "--out", os.path.join(tmp, "o_white"))
    fj = glob.glob(os.path.join(tmp, "o_white", "*", "findings.json"))
    check(rc == 0 and len(fj) == 1, f"an all-white slide completes ({log.strip()[-160:]})")
    if fj:
        d = valid_findings(fj[0], "white slide")
        check("low-tissue" in json.dumps(d.get("qc")) and not d.get("regions"),
              "white slide: low-tissue flag and no regions")

    # The real slide.
    cmu = os.path.join(SHARED, "data", "real", "slides", "CMU-1-Small-Region.svs")
    if os.path.isfile(cmu):
        rc, log = analyze(cmu, "--out", os.path.join(tmp, "o_cmu"))
        print(log)
        fj = glob.glob(os.path.join(tmp, "o_cmu", "*", "findings.json"))
        check(rc == 0 and len(fj) == 1, "CMU-1-Small-Region.svs: the run completes")
        if fj:
            valid_findings(fj[0], "CMU-1-Small-Region")
            valid_geojson(os.path.join(os.path.dirname(fj[0]), "regions.geojson"), "CMU-1-Small-Region")
    else:
        print("CMU-1-Small-Region.svs absent: that part skipped")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
