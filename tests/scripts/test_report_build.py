"""`histoplan report build` end to end on findings of real runs: a generated slide and the real
Aperio slide ../shared/data/real/slides/CMU-1-Small-Region.svs, both analysed by `histoplan
analyze` with the default model under one accession; reports of each slide alone and of both.

For every report:
- report.json validates against schemas/report.schema.json (draft 2020-12);
- its numbers are recomputed here from the findings files (sums, percentages of analysed tiles,
  the largest invasive focus, rounding to the reporting precision) and must agree;
- every statement's text is its template with its values, every value equals the report's value
  at its pointer, and every piece of evidence names a slide, region and tiles of the report;
- the FHIR bundle validates against the official HL7 FHIR R4 JSON schema (tests/js, npm);
- the HTML passes test_report_html_page's checks (every number tied to report.json, no stray
  digit, self-contained, PRELIMINARY, notice, missing fields shown) and embeds the images;
- every output carries the research-use notice;
- no patient identifier, nor the accession, appears in a file name, the audit log or the
  command's output; they appear only in the patient section.
With the slide files given (--slide), the leading regions get thumbnails of the tissue read from
the slide; each is compared with the same box read by python3-openslide and scaled by PIL.
Then the report is signed and the signed revision's FHIR and HTML are checked the same way.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import test_report_html_page as html_page  # noqa: E402

try:
    import jsonschema
except ImportError as e:
    print(f"skipped: jsonschema not available ({e}); run with /usr/bin/python3")
    sys.exit(77)

ck = lib.Checks()
SCHEMA = lib.load(os.path.join(lib.SRC, "schemas", "report.schema.json"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
VALIDATE_FHIR = os.path.join(lib.SRC, "tests", "js", "validate-fhir.js")
NODE_MODULES = os.path.join(lib.SRC, "tests", "js", "node_modules", "ajv")
NOTICE = "not a diagnosis"
SECRETS = [lib.PATIENT["name"], "Quixley", "Zanthorpe", lib.PATIENT["identifiers"][0]["value"],
           lib.PATIENT["birth_date"], lib.ACCESSION]


def r(v, d):
    x = round(v * 10 ** d) / 10 ** d
    return 0.0 if x == 0 else x


def fmt(v):
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return repr(v)


def pointer(doc, p):
    for tok in p.split("/")[1:]:
        tok = tok.replace("~1", "/").replace("~0", "~")
        doc = doc[int(tok)] if isinstance(doc, list) else doc[tok]
    return doc


def check_numbers(name, rep, findings):
    """The report's numbers recomputed from the findings files."""
    cf = rep["case_findings"]
    tiles = sum(f["analysis"]["tiles_analysed"] for f in findings)
    ck(cf["tiles_analysed"] == tiles, f"{name}: tiles analysed {cf['tiles_analysed']} = sum of findings {tiles}")
    ck(cf["tissue_area_mm2"] == r(sum(f["tissue"]["area_mm2"] for f in findings), 3), f"{name}: tissue area")
    for k, c in enumerate(cf["classes"]):
        tc = sum(f["classes"][k]["tile_count"] for f in findings)
        area = sum(f["classes"][k]["area_mm2"] for f in findings)
        ck(c["tile_count"] == tc and c["area_mm2"] == r(area, 3) and
           c["percent_of_tissue"] == (r(100.0 * tc / tiles, 1) if tiles else None),
           f"{name}: class {c['name']}: {c['area_mm2']} mm2, {c['percent_of_tissue']}% from the findings")
    inv = [f["invasive"] for f in findings if f["invasive"] and f["invasive"]["region_count"] > 0]
    if inv:
        best = max(inv, key=lambda e: e["largest_focus_diameter_mm"])
        ck(cf["invasive"]["largest_focus_mm"] == r(best["largest_focus_diameter_mm"], 1) and
           cf["invasive"]["region_id"] == best["largest_region_id"],
           f"{name}: largest invasive focus {cf['invasive']['largest_focus_mm']} mm, region {best['largest_region_id']}")
    for s, f in zip(rep["slides"], findings):
        ck(s["slide_id"] == f["slide"]["slide_id"] and s["sha256"] == f["slide"]["sha256"],
           f"{name}: slide {s['slide_id']} identity")
        regions = {x["id"]: x for x in f["regions"]}
        ok = all(x["area_mm2"] == r(regions[x["region_id"]]["area_mm2"], 3) and
                 x["diameter_mm"] == r(regions[x["region_id"]]["diameter_mm"], 1) and
                 x["mean_prob"] == r(regions[x["region_id"]]["mean_prob"], 3) for x in s["regions"])
        ck(ok and len(s["regions"]) == len(f["regions"]), f"{name}: slide {s['slide_id']}: {len(s['regions'])} regions as measured")


def check_statements(name, rep):
    slides = {s["slide_id"]: s for s in rep["slides"]}
    bad = []
    for st in rep["statements"]:
        text = st["template"]
        for i, v in enumerate(st["values"]):
            if pointer(rep, v["pointer"]) != v["value"]:
                bad.append(f"{st['id']}: value {i} differs from {v['pointer']}")
            unit = v["unit"] or ""
            sep = " " if unit and unit != "%" else ""
            text = text.replace("{%d}" % i, fmt(v["value"]) + sep + unit)
        if text != st["text"]:
            bad.append(f"{st['id']}: text is not its template filled in: {st['text']!r} vs {text!r}")
        for ev in st["evidence"]:
            s = slides.get(ev["slide_id"])
            if s is None:
                bad.append(f"{st['id']}: evidence names an unknown slide")
                continue
            if ev["region_id"] is not None:
                reg = next((x for x in s["regions"] if x["region_id"] == ev["region_id"]), None)
                if reg is None or ev["tiles"] != reg["evidence_tiles"]:
                    bad.append(f"{st['id']}: evidence region {ev['region_id']} or its tiles do not match")
    ck(not bad, f"{name}: {len(rep['statements'])} statements: text = template + values; values and evidence resolve {bad[:3]}")
    ids = {s["id"] for s in rep["statements"]}
    ck(set(rep["diagnosis"]["statement_ids"]) <= ids and rep["diagnosis"]["statement_ids"],
       f"{name}: the category {rep['diagnosis']['category']} points at statements {rep['diagnosis']['statement_ids']}")


def check_fhir(name, path, status):
    if not ck(os.path.isdir(NODE_MODULES), f"{name}: tests/js/node_modules present (scripts/install-deps.sh)"):
        return
    p = subprocess.run(["node", VALIDATE_FHIR, "--status", status, path], capture_output=True, text=True)
    ck(p.returncode == 0, f"{name}: FHIR R4 official schema: {(p.stdout + p.stderr).strip()[:300]}")
    with open(path) as f:
        ck(NOTICE in f.read().lower(), f"{name}: the FHIR bundle carries the research-use notice")


def check_html(name, path, rep, signed):
    before = html_page.failures
    html_page.check_page(name, path, rep, signed)
    ck(html_page.failures == before, f"{name}: HTML page checks ({html_page.failures - before} failed)")
    with open(path) as f:
        page = f.read()
    n_img = sum(1 for s in rep["slides"] for x in [s["overlay_image"]] +
                [g[k] for g in s["regions"] for k in ("thumbnail", "tissue_thumbnail")] if x)
    ck(page.count("data:image/png;base64,") >= n_img, f"{name}: {n_img} images embedded")


def picture(path):
    """The picture inside an image with a legend band (its PNG "histoplan:legend" layout gives
    where), and the whole file's size."""
    from PIL import Image
    im = Image.open(path)
    lay = json.loads(im.info.get("histoplan:legend") or "null")
    full = im.size
    im = im.convert("RGB")
    if lay:
        im = im.crop((0, 0, lay["map"][0], lay["map"][1]))
    return im, full


def check_tissue_thumbnails(name, out_dir, rep, slide_paths):
    """Each tissue thumbnail against the same box read by OpenSlide's Python binding."""
    try:
        import numpy as np
        import openslide
        from PIL import Image
    except ImportError as e:
        ck(False, f"{name}: python3-openslide, numpy and PIL needed ({e})")
        return
    count, worst = 0, 0.0
    for s, path in zip(rep["slides"], slide_paths):
        osr = openslide.open_slide(path)  # ImageSlide (PIL) for a plain image
        W, H = osr.dimensions
        for g in s["regions"]:
            t = g["tissue_thumbnail"]
            if t is None:
                continue
            img, full = picture(os.path.join(out_dir, t["file"]))
            x, y, w, h = g["bbox_level0"]
            x0, y0 = max(0, x - w * 0.25), max(0, y - h * 0.25)
            x1, y1 = min(W, x + w * 1.25), min(H, y + h * 1.25)
            side = max(x1 - x0, y1 - y0)
            ok_size = full == (t["width_px"], t["height_px"]) and max(img.size) <= 256
            level = max((l for l, d in enumerate(osr.level_downsamples) if d <= max(1.0, side / 256)), default=0)
            d = osr.level_downsamples[level]
            ref = osr.read_region((int(x0), int(y0)), level, (int(-(-(x1 - x0) // d)), int(-(-(y1 - y0) // d))))
            bg = Image.new("RGB", ref.size, (255, 255, 255))
            bg.paste(ref, mask=ref.split()[3])
            ref = bg.resize(img.size, Image.BOX)
            diff = float(np.abs(np.asarray(img, dtype=float) - np.asarray(ref, dtype=float)).mean())
            worst = max(worst, diff)
            count += 1
            ck(ok_size, f"{name}: tissue thumbnail {t['file']} is {img.size}, at most 256 px")
            hm = g["thumbnail"]
            if hm:  # the heatmap crop shows the same box: same shape
                hw, hh = picture(os.path.join(out_dir, hm["file"]))[0].size
                ratio = (hw / hh) / (img.size[0] / img.size[1])
                ck(0.85 < ratio < 1.18 and max(hw, hh) == 192,
                   f"{name}: heatmap thumbnail {hm['file']} ({hw}x{hh}) has the tissue "
                   f"thumbnail's shape")
    ck(count > 0 and worst < 6.0,
       f"{name}: {count} tissue thumbnails match OpenSlide's read of the same boxes (worst mean |diff| {worst:.2f} of 255)")
    # The first evidence tiles of the regions with tissue thumbnails: the tile itself, no margin.
    count, worst, missing = 0, 0.0, 0
    for s, path in zip(rep["slides"], slide_paths):
        osr = openslide.open_slide(path)
        for g in s["regions"]:
            if g["tissue_thumbnail"] is None:
                continue
            for t in g["evidence_tiles"][:3]:
                if not t.get("image"):
                    missing += 1
                    continue
                img, full = picture(os.path.join(out_dir, t["image"]["file"]))
                x, y, sz = t["x"], t["y"], t["size"]
                level = max((l for l, d in enumerate(osr.level_downsamples) if d <= max(1.0, sz / 256)), default=0)
                d = osr.level_downsamples[level]
                ref = osr.read_region((int(x), int(y)), level, (int(-(-sz // d)), int(-(-sz // d))))
                bg = Image.new("RGB", ref.size, (255, 255, 255))
                bg.paste(ref, mask=ref.split()[3])
                ref = bg.resize(img.size, Image.BOX)
                worst = max(worst, float(np.abs(np.asarray(img, dtype=float) - np.asarray(ref, dtype=float)).mean()))
                count += 1
    ck(count > 0 and missing == 0 and worst < 6.0,
       f"{name}: {count} evidence tile images (none missing) match OpenSlide's read of the tiles "
       f"(worst mean |diff| {worst:.2f} of 255)")


def check_privacy(name, out_dir, log):
    names = [os.path.relpath(os.path.join(d, x), out_dir) for d, ds, fs in os.walk(out_dir) for x in ds + fs]
    leaked = [s for s in SECRETS if any(s.lower() in n.lower() for n in names)]
    ck(not leaked, f"{name}: no identifier in {len(names)} file names")
    with open(os.path.join(out_dir, "audit.jsonl")) as f:
        audit = f.read()
    ck(not [s for s in SECRETS if s in audit], f"{name}: no identifier in the audit log")
    ck(not [s for s in SECRETS if s in log], f"{name}: no identifier in the command's output")


with tempfile.TemporaryDirectory() as tmp:
    synth = lib.synthetic_findings(tmp)
    cmu = lib.analyze(tmp, lib.CMU, os.path.join(tmp, "analysis-cmu"))
    case = lib.case_file(tmp, patient=lib.PATIENT,
                         specimen={"procedure": "core needle biopsy", "laterality": "left",
                                   "site": "breast, upper outer quadrant", "collected": "2026-11-20"},
                         clinical={"age_years": 41, "history": ["BRCA1 carrier"], "birads": 5,
                                   "imaging_impression": "Irregular spiculated mass, 14 mm"},
                         preferences=["wishes fertility preservation"],
                         requested_model={"name": "histoplan-default-densenet", "version": "1.0.0"})
    bare = lib.case_file(tmp, "bare.json")
    synth_slide = os.path.join(tmp, "synth.tiff")
    runs = [("synthetic", case, [synth], []), ("CMU-1-Small-Region", case, [cmu], [lib.CMU]),
            ("two slides", case, [synth, cmu], [synth_slide, lib.CMU]), ("accession only", bare, [synth], [])]
    for name, c, fl, slides in runs:
        out = os.path.join(tmp, "report-" + name.replace(" ", "-"))
        # the slide files in the reverse order: they are matched to the findings by hash
        rc, log = lib.build(c, fl, out, [a for p in reversed(slides) for a in ("--slide", p)])
        if not ck(rc == 0, f"{name}: build exit {rc}: {log.strip()[:200]}"):
            continue
        rep = lib.load(os.path.join(out, "report.json"))
        errs = list(VALIDATOR.iter_errors(rep))
        ck(not errs, f"{name}: report.json validates against schemas/report.schema.json "
                     f"{[(list(e.absolute_path), e.message[:100]) for e in errs[:3]]}")
        ck(rep["status"] == "preliminary" and rep["sign_off"] is None and rep["revision"] == 0,
           f"{name}: preliminary, unsigned")
        ck(NOTICE in rep["research_use_notice"].lower(), f"{name}: report.json carries the research-use notice")
        findings = [lib.load(f) for f in fl]
        check_numbers(name, rep, findings)
        check_statements(name, rep)
        check_fhir(name, os.path.join(out, "report.fhir.json"), "preliminary")
        check_html(name, os.path.join(out, "report.html"), rep, False)
        check_privacy(name, out, log)
        tissue = [g["tissue_thumbnail"] for sl in rep["slides"] for g in sl["regions"] if g["tissue_thumbnail"]]
        if slides:
            check_tissue_thumbnails(name, out, rep, slides)
        else:
            ck(not tissue, f"{name}: no slide given, no tissue thumbnails")
        if c == bare:
            ck({"patient.name", "patient.birth_date", "specimen.procedure", "clinical.age_years", "preferences"}
               <= set(rep["case"]["missing"]) and rep["case"]["patient"]["name"] is None,
               f"{name}: absent case fields listed as missing, none invented")
        else:
            ck(rep["case"]["patient"]["name"] == lib.PATIENT["name"] and not rep["case"]["missing"] == [],
               f"{name}: the patient section holds the given identity")

    # A slide without a pyramid (a plain 6144 x 6144 PNG of the generated slide): regions too
    # large to read at once are sampled row by row, and must still match.
    import openslide
    from PIL import Image
    png = os.path.join(tmp, "plain.png")
    o = openslide.OpenSlide(synth_slide)
    o.read_region((0, 0), 0, o.dimensions).convert("RGB").save(png, compress_level=1)
    plain = lib.analyze(tmp, png, os.path.join(tmp, "analysis-plain"), extra=["--mpp", "0.25"])
    out = os.path.join(tmp, "report-plain")
    rc, log = lib.build(case, [plain], out, ["--slide", png])
    if ck(rc == 0, f"single-level PNG slide: build exit {rc}: {log.strip()[:200]}"):
        rep = lib.load(os.path.join(out, "report.json"))
        big = [g for g in rep["slides"][0]["regions"] if g["tissue_thumbnail"] and
               max(g["bbox_level0"][2], g["bbox_level0"][3]) * 1.5 > 4096]
        ck(big, f"single-level PNG slide: {len(big)} region(s) large enough to be sampled row by row")
        check_tissue_thumbnails("single-level PNG slide", out, rep, [png])

    # Sign the two-slide report; its signed revision renders and validates the same way.
    out = os.path.join(tmp, "report-two-slides")
    key = os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True, capture_output=True)
    rc, log = lib.run(["report", "sign", out, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 0, f"sign: exit {rc}: {log.strip()[:200]}")
    rev = os.path.join(out, "revisions", "1")
    if os.path.isdir(rev):
        signed = lib.load(os.path.join(rev, "report.json"))
        ck(not list(VALIDATOR.iter_errors(signed)), "signed revision validates against the report schema")
        ck(signed["status"] == "final" and signed["sign_off"]["pathologist_id"] == "dr-okafor",
           "signed revision: status final, signer recorded")
        check_fhir("signed revision", os.path.join(rev, "report.fhir.json"), "final")
        with open(os.path.join(rev, "report.fhir.json")) as f:
            bundle = f.read()
        ck('"verifier"' in bundle and "dr-okafor" in bundle, "signed FHIR: the pathologist is the Provenance verifier")
        check_html("signed revision", os.path.join(rev, "report.html"), signed, True)
        check_privacy("signed", out, log)
ck.exit()
