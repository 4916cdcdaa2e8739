#!/usr/bin/python3
"""Domain of validity and confidence that means something, through the command line.

- The default model's card states its domain and ships an out-of-domain detector whose file the
  card hashes: a detector file changed by one byte is refused, naming the SHA-256 mismatch.
- The real Aperio slide in shared (skin, not breast, and real tissue the synthetic model never
  saw) is out of domain: findings.json has the out-of-domain QC flag and its reason; analyze says
  so first; the report suggests no category and no care plan, its confidence is low, report.html
  opens with the banner, report build says so first, and the FHIR bundle has the flag as an
  Observation, no DiagnosticReport conclusionCode and no CarePlan.
- Generated slides are in domain (checked by the detector, few tiles beyond its threshold).
- A real H&E patch set from shared is out of domain, patch by patch.
- A generated slide at a resolution outside the card's range is out of domain, naming it.
- Confidence: the calibrated confidence in findings.json is the mean top-class probability after
  the card's temperature, recomputed here from tiles.csv; a card without calibration, or with a
  temperature that flattens the probabilities, never gives high confidence.

Shared data missing: those parts are skipped (exit 77 only when nothing could run).
"""
import csv
import glob
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_testlib as lib  # noqa: E402

ZOO = os.path.join(lib.SRC, "models", "zoo")
NAME = "histoplan-default-densenet"
PATCHES = os.path.join(lib.SHARED, "data", "real", "patches")
# Real H&E patches of at least 4 x 4 model tiles (224 px at the 0.5 um/px given with --mpp).
PATCH_SET = ["HEnorm_example1_1024px.png", "HEnorm_example2_1024px.png",
             "TCGA-HE-7130-01Z-00-DX1_region_1000px.png", "tiatoolbox_stain_target_1000px.png"]

ck = lib.Checks()


def analyze(slide, out, model=None, extra=()):
    """Runs analyze; returns (exit status, log, findings dict or None, its folder)."""
    args = ["analyze", slide, "--model", model or lib.MODEL, "--out", out, "--case", lib.ACCESSION,
            "--overwrite"] + list(extra)
    rc, log = lib.run(args)
    found = glob.glob(os.path.join(out, "*", "findings.json"))
    if rc != 0 or not found:
        return rc, log, None, None
    return rc, log, lib.load(found[0]), os.path.dirname(found[0])


def copy_zoo(tmp, name, edit_card=None, edit_detector=None):
    """A copy of the default model, its card and detector under `tmp/name`, edited."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for ext in (".onnx", ".card.json", ".ood.json"):
        shutil.copy(os.path.join(ZOO, NAME + ext), os.path.join(d, NAME + ext))
    if edit_detector:
        p = os.path.join(d, NAME + ".ood.json")
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(edit_detector(data))
    if edit_card:
        p = os.path.join(d, NAME + ".card.json")
        card = lib.load(p)
        edit_card(card)
        lib.write_json(p, card)
    return os.path.join(d, NAME + ".onnx")


def build_report(tmp, findings_dir, out):
    case = lib.case_file(tmp, "case-" + os.path.basename(out) + ".json")
    rc, log = lib.build(case, [os.path.join(findings_dir, "findings.json")], out)
    rep = lib.load(os.path.join(out, "report.json")) if rc == 0 else None
    return rc, log, rep


def first_line_after_slide(log):
    lines = [ln for ln in log.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("slide "):
            return lines[i + 1] if i + 1 < len(lines) else ""
    return ""


def calibrated_from_tiles(folder, classes, temperature):
    """Mean over analysed tiles of max softmax(log p / T), from tiles.csv's probabilities."""
    total, n = 0.0, 0
    with open(os.path.join(folder, "tiles.csv")) as f:
        for row in csv.DictReader(f):
            p = [float(row["prob_" + c]) for c in classes]
            z = [max(v, 1e-30) ** (1.0 / temperature) for v in p]
            total += max(z) / sum(z)
            n += 1
    return total / n if n else float("nan")


def main():
    if not os.path.exists(os.path.join(ZOO, NAME + ".ood.json")):
        print(f"FAIL: {NAME}.ood.json is not in models/zoo")
        sys.exit(1)
    card = lib.load(os.path.join(ZOO, NAME + ".card.json"))
    ck(isinstance(card.get("domain"), dict) and card["domain"].get("mpp_range"),
       "the default card states its domain (tissue, stain, MPP range)")
    od = card.get("ood_detector", {})
    with open(os.path.join(ZOO, NAME + ".ood.json"), "rb") as f:
        ck(od.get("sha256") == hashlib.sha256(f.read()).hexdigest(),
           "the card holds the detector file's SHA-256")
    rates = od.get("rates", {})
    ck(isinstance(rates.get("in_domain_false_positive_rate"), (int, float)) and rates.get("detection_rate"),
       f"the card records the detector's rates: {json.dumps(rates)[:300]}")
    cal = card.get("calibration", {})
    ck(cal.get("method") == "temperature" and "ece_before" in cal.get("reliability", {})
       and "ece_after" in cal.get("reliability", {}),
       f"the card records the temperature and its reliability figure: {json.dumps(cal)[:200]}")
    classes = card["classes"]
    T = cal.get("temperature", 1.0)

    tmp = tempfile.mkdtemp(prefix="hp-ood-")
    try:
        # A detector file that is not the one the card describes is refused.
        bad = copy_zoo(tmp, "tampered", edit_detector=lambda b: b.replace(b'"threshold":', b'"threshold": ', 1))
        slide = os.path.join(tmp, "g1.tiff")
        rc, log = lib.run(["synth", "--out", slide, "--size", "6144x6144", "--seed", "1401"])
        ck(rc == 0, "synth a 6144 x 6144 slide")
        rc, log, _, _ = analyze(slide, os.path.join(tmp, "o-tampered"), model=bad)
        ck(rc != 0 and "SHA-256" in log and "out-of-domain detector" in log,
           f"a changed detector file is refused, naming the hash ({log.strip()[-200:]})")

        # Generated slides are in domain.
        in_domain = []
        for seed, size in ((1401, 6144), (9006, 8192)):
            g = os.path.join(tmp, f"g{seed}.tiff")
            if not os.path.exists(g):
                lib.run(["synth", "--out", g, "--size", f"{size}x{size}", "--seed", str(seed)])
            rc, log, f, folder = analyze(g, os.path.join(tmp, f"o-g{seed}"))
            dm = f["domain"] if f else {}
            ck(rc == 0 and dm.get("checked") is True and dm.get("out_of_domain") is False
               and "out-of-domain" not in f["qc"]["flags"],
               f"generated slide seed {seed}: in domain ({(dm.get('detector') or {}).get('fraction_beyond')} "
               f"of tiles beyond the threshold)")
            ck("domain: in the model's domain" in first_line_after_slide(log),
               f"generated slide seed {seed}: analyze says it is in domain")
            if f:
                in_domain.append((seed, f, folder))
        # Calibration: the findings' calibrated confidence is the tiles' temperature-scaled mean.
        for seed, f, folder in in_domain:
            got = f["domain"]["calibration"]["calibrated_confidence"]
            want = calibrated_from_tiles(folder, classes, T)
            ck(abs(got - want) < 2e-3, f"seed {seed}: calibrated confidence {got:.4f} is the tiles' mean after "
                                       f"T = {T} ({want:.4f})")
        if in_domain:
            seed, f, folder = in_domain[0]
            rc, log, rep = build_report(tmp, folder, os.path.join(tmp, "r-in"))
            ck(rc == 0 and rep["diagnosis"]["category"] != "indeterminate"
               and "withheld" not in rep["care_plan"] and "MODEL NOT VALID" not in log,
               f"generated slide: the report suggests a category ({rep and rep['diagnosis']['category']})")
            ck(rep is not None and rep["case_findings"]["domain"]["calibrated_confidence"] is not None,
               "generated slide: the report carries the calibrated confidence")

        # Without calibration in the card, or with a temperature that flattens every tile's
        # probabilities, confidence is never high.
        g = os.path.join(tmp, "g1401.tiff")
        nocal = copy_zoo(tmp, "nocal", edit_card=lambda c: c.pop("calibration"))
        rc, log, f, folder = analyze(g, os.path.join(tmp, "o-nocal"), model=nocal)
        rc2, log2, rep = build_report(tmp, folder, os.path.join(tmp, "r-nocal")) if f else (1, log, None)
        ck(rep is not None and rep["confidence"]["level"] != "high"
           and any("calibration" in r for r in rep["confidence"]["reasons"]),
           f"a card without calibration: confidence not high, saying why ({rep and rep['confidence']})")
        flat = copy_zoo(tmp, "flat", edit_card=lambda c: c["calibration"].update(temperature=50.0))
        rc, log, f, folder = analyze(g, os.path.join(tmp, "o-flat"), model=flat)
        cc = f["domain"]["calibration"]["calibrated_confidence"] if f else None
        rc2, log2, rep = build_report(tmp, folder, os.path.join(tmp, "r-flat")) if f else (1, log, None)
        ck(cc is not None and cc < 0.5 and rep is not None and rep["confidence"]["level"] != "high"
           and any("calibrated" in r for r in rep["confidence"]["reasons"]),
           f"temperature 50: calibrated confidence {cc} and confidence not high, saying why "
           f"({rep and rep['confidence']['reasons']})")

        # A resolution outside the card's range is out of domain, naming it.
        lo, hi = card["domain"]["mpp_range"]
        coarse = os.path.join(tmp, "coarse.tiff")
        rc, log = lib.run(["synth", "--out", coarse, "--size", "3072x3072", "--seed", "1401",
                           "--mpp", str(round(hi * 2, 3))])
        rc, log, f, folder = analyze(coarse, os.path.join(tmp, "o-coarse"))
        ck(f is not None and f["domain"]["out_of_domain"] and f["domain"]["mpp_in_range"] is False
           and "resolution" in (f["domain"]["reason"] or ""),
           f"a slide at {hi * 2:g} um/px is out of domain for its resolution ({f and f['domain']['reason']})")

        # The real slide: skin, real tissue.
        if os.path.exists(lib.CMU):
            rc, log, f, folder = analyze(lib.CMU, os.path.join(tmp, "o-cmu"))
            ck(rc == 0 and f is not None, "analyze the real slide")
            if f:
                dm = f["domain"]
                ck(dm["out_of_domain"] and dm["checked"] and "out-of-domain" in f["qc"]["flags"]
                   and dm["reason"] and "not valid" in f["qc"]["flag_descriptions"]["out-of-domain"],
                   f"real slide: out of domain with its reason ({dm['reason']})")
                ck(first_line_after_slide(log).strip().startswith("MODEL NOT VALID FOR THIS SLIDE"),
                   f"real slide: analyze says so first ({first_line_after_slide(log)[:120]})")
                with open(os.path.join(folder, "tiles.csv")) as fh:
                    scores = [float(r["ood_score"]) for r in csv.DictReader(fh) if r["ood_score"]]
                ck(len(scores) == f["analysis"]["tiles_analysed"],
                   "real slide: tiles.csv has every analysed tile's out-of-domain score")
                rc, log, rep = build_report(tmp, folder, os.path.join(tmp, "r-cmu"))
                ck(rc == 0 and rep is not None, "report build on the real slide")
                if rep:
                    ck(rep["diagnosis"]["category"] == "indeterminate",
                       f"real slide: no category ({rep['diagnosis']['category']})")
                    cp = rep["care_plan"]
                    ck(cp["suggestions"] == [] and cp.get("withheld", "").startswith("model not valid for this slide")
                       and len(cp["not_applied"]) > 0,
                       f"real slide: no care plan ({cp.get('withheld', '')[:100]})")
                    ck(rep["confidence"]["level"] == "low", f"real slide: confidence low, never high "
                                                            f"({rep['confidence']['level']})")
                    diag = [s for s in rep["statements"] if s["id"] in rep["diagnosis"]["statement_ids"]]
                    ck(any("model not valid for slide" in s["text"] for s in diag),
                       "real slide: the diagnosis statement says the model is not valid")
                    ck(log.splitlines()[0].startswith("MODEL NOT VALID FOR THIS SLIDE"),
                       f"real slide: report build says so first ({log.splitlines()[0][:100]})")
                    with open(os.path.join(tmp, "r-cmu", "report.html"), encoding="utf-8") as fh:
                        html = fh.read()
                    body = html[html.find("<body>"):]
                    first_div = body[body.find("<div"):body.find("<div") + 80]
                    ck('id="domain-banner"' in first_div and "Model not valid for this slide" in body[:1500],
                       f"real slide: report.html opens with the banner ({first_div})")
                    fhir = lib.load(os.path.join(tmp, "r-cmu", "report.fhir.json"))
                    res = [e["resource"] for e in fhir["entry"]]
                    dr = [r for r in res if r["resourceType"] == "DiagnosticReport"]
                    ck(dr and "conclusionCode" not in dr[0] and "not valid" in dr[0].get("conclusion", ""),
                       "real slide FHIR: DiagnosticReport without conclusionCode, its conclusion says why")
                    flag_obs = [r for r in res if r["resourceType"] == "Observation"
                                and any(c.get("code") == "out-of-domain"
                                        for c in r.get("valueCodeableConcept", {}).get("coding", []))]
                    ck(len(flag_obs) == 1, "real slide FHIR: an Observation with the out-of-domain flag")
                    ck(not any(r["resourceType"] in ("CarePlan", "ServiceRequest") for r in res),
                       "real slide FHIR: no CarePlan, no ServiceRequest")
        else:
            print(f"skipped: {lib.CMU} not present")

        # A real H&E patch set: out of domain, every patch.
        present = [p for p in PATCH_SET if os.path.exists(os.path.join(PATCHES, p))]
        for p in present:
            rc, log, f, folder = analyze(os.path.join(PATCHES, p), os.path.join(tmp, "o-" + p), extra=["--mpp", "0.5"])
            dm = f["domain"] if f else {}
            ck(rc == 0 and dm.get("out_of_domain") is True and dm.get("checked") is True,
               f"real patch {p}: out of domain ({(dm.get('detector') or {}).get('fraction_beyond')} of tiles "
               f"beyond the threshold)")
        if not present:
            print(f"skipped: no patches of the set in {PATCHES}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ck.exit()


if __name__ == "__main__":
    main()
