"""The care-plan rule table (report/rules/care-plan-rules.json) through `histoplan report build`.

One real findings.json (a generated slide analysed with the default model) is edited into
variants: invasive, in situ only, benign, normal, a sub-threshold invasive focus (review for
invasion), a QC flag, low
confidence, nothing analysed. With case files that differ in age, history, prior findings,
BI-RADS and preferences, each report's care plan is checked against the rules expected to apply.
Every rule of the table must apply in at least one case and be left out in at least one other,
with the reason; personalization must show the case-file value that made a rule apply; gates
must hold back every other suggestion; and the suggested category must follow the table's
thresholds."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402

ck = lib.Checks()
RULES = lib.load(os.path.join(lib.SRC, "report", "rules", "care-plan-rules.json"))
ALL_IDS = {r["id"] for r in RULES["rules"]}


def extent_none(doc, key):
    e = doc[key]
    e.update(region_count=0, largest_region_id=None, total_area_mm2=0, extent_mm=0, largest_focus_diameter_mm=0)
    cls = e["class"]
    doc["regions"] = [r for r in doc["regions"] if r["class"] != cls]
    doc["isolated_tiles"] = [x for x in doc["isolated_tiles"] if x["class"] != cls]

    for c in doc["classes"]:
        if c["name"] == cls:
            c["region_count"] = 0
            c["largest_focus"] = None


def set_tiles(doc, name, tiles):
    """Gives class `name` `tiles` top-class tiles, taking them from / giving them to 'normal'."""
    classes = {c["name"]: c for c in doc["classes"]}
    delta = tiles - classes[name]["tile_count"]
    classes[name]["tile_count"] = tiles
    classes["normal"]["tile_count"] -= delta
    n = doc["analysis"]["tiles_analysed"]
    for c in doc["classes"]:
        c["fraction_of_tissue"] = c["tile_count"] / n


def v_invasive(doc):
    pass


def v_in_situ(doc):
    extent_none(doc, "invasive")


def v_benign(doc):
    extent_none(doc, "invasive")
    extent_none(doc, "in_situ_extent")


def v_normal(doc):
    v_benign(doc)
    set_tiles(doc, "benign", 0)


def v_small_invasive(doc):
    extent_none(doc, "in_situ_extent")
    doc["invasive"]["largest_focus_diameter_mm"] = 0.1
    for r in doc["regions"]:
        if r["class"] == "invasive":
            r["diameter_mm"] = min(r["diameter_mm"], 0.1)


def v_qc(doc):
    doc["qc"]["flags"] = ["blur"]
    doc["qc"]["flag_descriptions"] = {"blur": "The slide looks out of focus over much of the tissue."}


def v_low_confidence(doc):
    doc["uncertainty"]["fraction_uncertain"] = 0.5
    doc["uncertainty"]["mean_entropy"] = 0.55


def v_nothing(doc):
    doc["analysis"]["tiles_analysed"] = 0
    for c in doc["classes"]:
        c.update(tile_count=0, fraction_of_tissue=None, area_mm2=0, region_count=0, largest_focus=None)
    extent_none(doc, "invasive")
    extent_none(doc, "in_situ_extent")
    doc["regions"] = []
    doc["uncertainty"].update(mean_entropy=None, max_entropy=None, fraction_uncertain=None)


# (name, findings variant, case-file fields, category, rules that must apply, rules that must not)
CASES = [
    ("invasive, young, BRCA, fertility, BI-RADS 5", v_invasive,
     {"clinical": {"age_years": 41, "history": ["BRCA1 carrier"], "birads": 5},
      "preferences": ["wishes fertility preservation"]},
     "invasive-carcinoma",
     {"CP-INV-ER-PGR", "CP-INV-HER2", "CP-INV-GRADE", "CP-INV-MDT", "CP-INV-GENETICS-AGE",
      "CP-GENETICS-HISTORY", "CP-INV-FERTILITY"},
     {"CP-GATE-QC", "CP-GATE-CONFIDENCE", "CP-INDETERMINATE", "CP-REVIEW-DISCORDANT", "CP-DCIS-ER",
      "CP-BENIGN-CONCORDANCE"}),
    ("invasive, older, BI-RADS 2 (discordant)", v_invasive,
     {"clinical": {"age_years": 62, "birads": 2}, "preferences": ["wishes fertility preservation"]},
     "invasive-carcinoma",
     {"CP-INV-ER-PGR", "CP-INV-MDT", "CP-REVIEW-DISCORDANT"},
     {"CP-INV-GENETICS-AGE", "CP-GENETICS-HISTORY", "CP-INV-FERTILITY"}),
    ("invasive, 48, fertility wish", v_invasive,
     {"clinical": {"age_years": 48}, "preferences": ["fertility preservation discussed"]},
     "invasive-carcinoma", {"CP-INV-GENETICS-AGE"}, {"CP-INV-FERTILITY", "CP-REVIEW-DISCORDANT"}),
    ("in situ, BRCA2, prior atypia, BI-RADS 4", v_in_situ,
     {"clinical": {"age_years": 55, "history": ["BRCA2 mutation"], "prior_findings": ["Atypical ductal hyperplasia 2019"],
                   "birads": 4}},
     "in-situ-carcinoma",
     {"CP-DCIS-ER", "CP-DCIS-EXCLUDE-INVASION", "CP-DCIS-SURGERY", "CP-GENETICS-HISTORY", "CP-REVIEW-ATYPIA"},
     {"CP-INV-ER-PGR", "CP-INV-HER2", "CP-REVIEW-DISCORDANT", "CP-INV-GENETICS-AGE"}),
    ("benign, BI-RADS 5 (discordant)", v_benign, {"clinical": {"birads": 5}}, "benign",
     {"CP-REVIEW-DISCORDANT"}, {"CP-BENIGN-CONCORDANCE", "CP-BENIGN-NO-IMAGING", "CP-DCIS-ER", "CP-REVIEW-ATYPIA"}),
    ("benign, BI-RADS 2", v_benign, {"clinical": {"birads": 2}}, "benign",
     {"CP-BENIGN-CONCORDANCE"}, {"CP-REVIEW-DISCORDANT", "CP-BENIGN-NO-IMAGING", "CP-HIGH-RISK-SCREENING"}),
    ("benign, no imaging", v_benign, {}, "benign",
     {"CP-BENIGN-NO-IMAGING"}, {"CP-BENIGN-CONCORDANCE", "CP-REVIEW-DISCORDANT"}),
    ("normal, BRCA1, prior atypia, BI-RADS 1", v_normal,
     {"clinical": {"birads": 1, "history": ["BRCA1 carrier"], "prior_findings": ["atypical lobular hyperplasia"]}},
     "normal", {"CP-HIGH-RISK-SCREENING", "CP-REVIEW-ATYPIA"}, {"CP-BENIGN-CONCORDANCE", "CP-GENETICS-HISTORY"}),
    ("invasive focus below threshold", v_small_invasive, {"clinical": {"birads": 3}}, "review-for-invasion",
     {"CP-REVIEW-INVASION"}, {"CP-INV-ER-PGR", "CP-BENIGN-CONCORDANCE", "CP-DCIS-ER"}),
    ("QC flag", v_qc, {}, "invasive-carcinoma", {"CP-GATE-QC", "CP-INV-ER-PGR"}, {"CP-GATE-CONFIDENCE"}),
    ("low confidence", v_low_confidence, {}, "invasive-carcinoma", {"CP-GATE-CONFIDENCE"}, {"CP-GATE-QC"}),
    ("nothing analysed", v_nothing, {}, "indeterminate", {"CP-INDETERMINATE", "CP-GATE-CONFIDENCE"},
     {"CP-INV-ER-PGR", "CP-BENIGN-CONCORDANCE", "CP-BENIGN-NO-IMAGING"}),
]

with tempfile.TemporaryDirectory() as tmp:
    base = lib.synthetic_findings(tmp)
    fired_somewhere, skipped_somewhere = set(), set()
    for i, (name, edit, fields, category, must, must_not) in enumerate(CASES):
        fpath = lib.variant(base, os.path.join(tmp, f"v{i}", "findings.json"), edit)
        case = lib.case_file(tmp, f"case{i}.json", **fields)
        out = os.path.join(tmp, f"report{i}")
        rc, log = lib.build(case, [fpath], out)
        if not ck(rc == 0, f"{name}: build exit {rc}"):
            print(log)
            continue
        rep = lib.load(os.path.join(out, "report.json"))
        plan = rep["care_plan"]
        fired = {s["rule_id"]: s for s in plan["suggestions"]}
        skipped = {s["rule_id"]: s["reason"] for s in plan["not_applied"]}
        fired_somewhere |= set(fired)
        skipped_somewhere |= set(skipped)
        ck(rep["diagnosis"]["category"] == category, f"{name}: category {rep['diagnosis']['category']} (want {category})")
        ck(set(fired) | set(skipped) == ALL_IDS and not set(fired) & set(skipped),
           f"{name}: every rule either applies or is listed as not applied, with a reason")
        ck(all(skipped.values()), f"{name}: every rule left out has a reason")
        ck(must <= set(fired), f"{name}: applies {sorted(must)} (missing {sorted(must - set(fired))})")
        ck(not (must_not & set(fired)), f"{name}: does not apply {sorted(must_not & set(fired))}")
        gate = plan["gate_rule_id"]
        gates = {r["id"] for r in RULES["rules"] if r.get("gate")}
        ck((gate in fired) if gate else not (gates & set(fired)), f"{name}: gate {gate} matches the gate rules applied")
        ck(all(s["waits_for"] == (gate if s["rule_id"] != gate else None) for s in fired.values()),
           f"{name}: every other suggestion waits for the gate ({gate})")
        ck(all(s["requires_clinician_approval"] is True and s["decision"] == "pending" for s in fired.values()),
           f"{name}: every suggestion needs a clinician's approval and is pending")
        ck(all(s["statement_ids"] for s in fired.values()),
           f"{name}: every suggestion points at evidence statements")
        ids = {s["id"] for s in rep["statements"]}
        ck(all(set(s["statement_ids"]) <= ids for s in fired.values()), f"{name}: those statements exist")
        # Personalization: the case-file values that made a context rule apply are shown.
        for rid, s in fired.items():
            rule = next(r for r in RULES["rules"] if r["id"] == rid)
            want = [c["fact"] for c in rule.get("context", [])]
            got = [p["fact"] for p in s["personalization"]]
            if want:
                case_vals = {**fields.get("clinical", {}), "preferences": fields.get("preferences", [])}
                ck(got == want and all(p["value"] == case_vals.get(p["fact"]) for p in s["personalization"]),
                   f"{name}: {rid} shows the case-file facts it used {got}")
        # A suggestion's guideline is the rule's
        ck(all(s["guideline"] == next(r["guideline"] for r in RULES["rules"] if r["id"] == rid)
               for rid, s in fired.items()), f"{name}: each suggestion carries its rule's guideline and version")

    ck(fired_somewhere == ALL_IDS, f"every rule applies in some case (never: {sorted(ALL_IDS - fired_somewhere)})")
    ck(skipped_somewhere == ALL_IDS, f"every rule is left out in some case (never: {sorted(ALL_IDS - skipped_somewhere)})")

    # Threshold from the table, not from code: raising invasive_min_focus_mm above the focus
    # turns the invasive case into another category.
    import copy
    rules2 = copy.deepcopy(RULES)
    rules2["category"]["invasive_min_focus_mm"] = 1000
    rpath = lib.write_json(os.path.join(tmp, "rules2.json"), rules2)
    case = lib.case_file(tmp, "case-t.json")
    rc, log = lib.build(case, [base], os.path.join(tmp, "report-t"), ["--rules", rpath])
    rep = lib.load(os.path.join(tmp, "report-t", "report.json")) if rc == 0 else {}
    ck(rc == 0 and rep["diagnosis"]["category"] != "invasive-carcinoma",
       "the category follows the rule table's invasive threshold")
    # A malformed table is refused, naming the rule and field.
    bad = copy.deepcopy(RULES)
    bad["rules"][3]["when"][0]["fact"] = "tumour_size"
    rpath = lib.write_json(os.path.join(tmp, "rules-bad.json"), bad)
    rc, log = lib.build(case, [base], os.path.join(tmp, "report-b"), ["--rules", rpath])
    ck(rc == 1 and bad["rules"][3]["id"] in log and not os.path.exists(os.path.join(tmp, "report-b")),
       f"a rule with an unknown fact is refused naming the rule: {log.strip()[:160]}")
ck.exit()
