"""Amending by ids: the ids report.html shows (the category, each care-plan suggestion's rule
id, statements S<n>, regions R<n>) are what `report sign --amend` takes, in a readable file:

  {"category": "in-situ", "reason": ...}
  {"suggestion": "CP-...", "decision": "declined", "reason": ...}

Runs `histoplan synth`, `analyze`, `report build` and `report sign` as a user does, then checks:
- the draft's HTML shows the id "category", every suggestion's rule id in its card, every
  statement id and every region id;
- a category change (invasive carcinoma -> in situ) derives the statements and the rule table's
  suggestions again: no statement still suggests invasive carcinoma, one says the pathologist set
  the category, the diagnosis cites existing statements, every suggestion's rule accepts the new
  category and none of the rules that need invasive carcinoma remains (read from the rule table
  itself), and sign_off lists what changed as a result (statements withdrawn and added,
  suggestions withdrawn and added: exactly the difference of the two care plans), shown in the
  signed HTML;
- a decision by rule id ("declined") is recorded with its reason, the FHIR bundle withdraws
  that suggestion's requests, and every revision verifies;
- refused, naming the problem and writing no revision: an old-style JSON pointer, an unknown
  suggestion id, a change without a reason, a member that is not amendable.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import sign_testlib as sl  # noqa: E402

ck = lib.Checks()
RULES = os.path.join(lib.SRC, "report", "rules", "care-plan-rules.json")


def category_ok(rule, category):
    """Whether `rule`'s conditions on the category admit `category` (None: it has none)."""
    conds = [c for c in rule.get("when", []) if c.get("fact") == "category"]
    if not conds:
        return None
    for c in conds:
        if "equals" in c and c["equals"] != category:
            return False
        if "in" in c and category not in c["in"]:
            return False
        if "not_in" in c and category in c["not_in"]:
            return False
        if "not_equals" in c and c["not_equals"] == category:
            return False
    return True


def html_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def revisions(d):
    p = os.path.join(d, "revisions")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


with tempfile.TemporaryDirectory() as tmp:
    findings = lib.synthetic_findings(tmp)
    case = lib.case_file(tmp, clinical={"age_years": 52}, patient={"sex": "female"})
    d = os.path.join(tmp, "report")
    rc, log = lib.build(case, [findings], d)
    ck(rc == 0, f"build: {log.strip()[:200]}")
    draft = lib.load(os.path.join(d, "report.json"))
    rules = {r["id"]: r for r in lib.load(RULES)["rules"]}
    ck(draft["diagnosis"]["category"] == "invasive-carcinoma",
       f"the generated slide's draft suggests invasive carcinoma ({draft['diagnosis']['category']})")

    # The ids, as the page shows them.
    h = html_text(os.path.join(d, "report.html"))
    ck('id="category"' in h and ">category</code>" in h, "the HTML shows the category's id")
    for s in draft["care_plan"]["suggestions"]:
        ck(f'data-rule="{s["rule_id"]}"><h3><code class="ref id" title="id for amendments">{s["rule_id"]}</code>' in h,
           f"the HTML heads suggestion {s['rule_id']}'s card with its id")
    ck(all(f'>{s["id"]}<' in h for s in draft["statements"]), "the HTML shows every statement id")
    regions = [r["region_id"] for sl_ in draft["slides"] for r in sl_["regions"]]
    ck(regions and all(f'id="region-{r}"' in h and f">{r}<" in h for r in regions), f"the HTML shows the region ids {regions}")

    key, pub = sl.keypair(tmp, "okafor")
    keys = (("dr-okafor", pub),)

    # Refusals first: nothing is written.
    bad = [
        ({"reason": "x", "changes": [{"field": "/diagnosis/category", "value": "in-situ-carcinoma"}]}, "not by JSON pointer"),
        ({"suggestion": "CP-NO-SUCH-RULE", "decision": "approved", "reason": "x"}, "no suggestion CP-NO-SUCH-RULE"),
        ({"category": "in-situ"}, "has no reason"),
        ({"category": "in-situ", "largest_focus_mm": 1, "reason": "x"}, "'largest_focus_mm' cannot be amended"),
        ({"category": "carcinoma-ish", "reason": "x"}, "category must be one of"),
        ({"suggestion": draft["care_plan"]["suggestions"][0]["rule_id"], "decision": "maybe", "reason": "x"},
         "approved, declined or pending"),
    ]
    for i, (obj, words) in enumerate(bad):
        p = lib.write_json(os.path.join(tmp, f"bad{i}.json"), obj)
        rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key, "--amend", p])
        ck(rc != 0 and words in log and not revisions(d), f"refused, naming it ({words}): {log.strip()[-160:]}")

    # The category, by its id.
    a1 = lib.write_json(os.path.join(tmp, "a1.json"), {"category": "in-situ", "reason": "Deeper levels: no invasion"})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key, "--amend", a1])
    ck(rc == 0 and revisions(d) == ["1"], f"signed with the category amended: {log.strip()[-160:]}")
    r1 = lib.load(os.path.join(d, "revisions", "1", "report.json"))
    dx = r1["diagnosis"]
    ck(dx["category"] == "in-situ-carcinoma" and dx["suggested_by"] == "pathologist" and dx["code"]["code"] == "86616005",
       "the category is the pathologist's, with its code")
    texts = [s["text"] for s in r1["statements"]]
    ck(not any(t.startswith("Invasive carcinoma is suggested") for t in texts),
       "no statement still suggests invasive carcinoma")
    ck(any("pathologist set the category" in t and "Carcinoma in situ" in t for t in texts),
       "a statement says the pathologist set the category")
    ids = {s["id"] for s in r1["statements"]}
    ck(len(ids) == len(r1["statements"]) and set(dx["statement_ids"]) <= ids and dx["statement_ids"],
       f"the diagnosis cites existing statements {dx['statement_ids']}")
    new = [s["rule_id"] for s in r1["care_plan"]["suggestions"]]
    old = [s["rule_id"] for s in draft["care_plan"]["suggestions"]]
    ck(new and all(category_ok(rules[r], "in-situ-carcinoma") is not False for r in new),
       f"every suggestion's rule admits in situ carcinoma: {new}")
    inv_only = [r for r in old if category_ok(rules[r], "invasive-carcinoma") and not category_ok(rules[r], "in-situ-carcinoma")]
    ck(inv_only and not set(inv_only) & set(new), f"the rules that need invasive carcinoma are gone: {inv_only}")
    for s in r1["care_plan"]["suggestions"]:
        for sid in s["statement_ids"]:
            if sid not in ids:
                ck(False, f"{s['rule_id']} cites statement {sid}, which exists")
    so = r1["sign_off"]
    ck([(a["id"], a["change"], a["before"], a["after"], a["reason"]) for a in so["amendments"]] ==
       [("category", "category", "invasive-carcinoma", "in-situ-carcinoma", "Deeper levels: no invasion")],
       "the amendment is recorded by id, before, after and reason")
    cq = so.get("consequences") or {}
    ck(sorted(x["id"] for x in cq.get("suggestions_removed", [])) == sorted(set(old) - set(new)) and
       sorted(x["id"] for x in cq.get("suggestions_added", [])) == sorted(set(new) - set(old)),
       f"what changed as a result: suggestions withdrawn {sorted(set(old) - set(new))}, added {sorted(set(new) - set(old))}")
    old_texts = {s["text"] for s in draft["statements"]}
    ck({x["text"] for x in cq.get("statements_removed", [])} == old_texts - set(texts) and
       {x["text"] for x in cq.get("statements_added", [])} == set(texts) - old_texts and
       cq.get("statements_removed"),
       "... and the statements withdrawn and added")
    h1 = html_text(os.path.join(d, "revisions", "1", "report.html"))
    ck("Changed as a result" in h1 and all(x in h1 for x in set(old) - set(new)),
       "the signed HTML lists what changed as a result")

    # A decision, by rule id.
    target = new[0]
    a2 = lib.write_json(os.path.join(tmp, "a2.json"),
                        {"suggestion": target, "decision": "declined", "reason": "Done on the core biopsy"})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key, "--amend", a2])
    ck(rc == 0 and revisions(d) == ["1", "2"], f"an amendment declining {target}: {log.strip()[-160:]}")
    r2 = lib.load(os.path.join(d, "revisions", "2", "report.json"))
    got = [s for s in r2["care_plan"]["suggestions"] if s["rule_id"] == target]
    ck(got and got[0]["decision"] == "declined", f"{target} is declined")
    ck([(a["id"], a["change"], a["before"], a["after"]) for a in r2["sign_off"]["amendments"]] ==
       [(target, "decision", "pending", "declined")] and r2["sign_off"]["consequences"] is None,
       "recorded by id, with nothing derived again")
    ck(r2["diagnosis"]["category"] == "in-situ-carcinoma", "the amended category stays")
    fhir = lib.load(os.path.join(d, "revisions", "2", "report.fhir.json"))
    statuses = [e["resource"].get("status") for e in fhir["entry"]
                if e["resource"]["resourceType"] in ("ServiceRequest", "CarePlan") and target in json.dumps(e["resource"])]
    ck(statuses and all(s in ("revoked", "cancelled", "active", "draft") for s in statuses) and "revoked" in statuses
       or not any(e["resource"]["resourceType"] == "ServiceRequest" and target in json.dumps(e["resource"]) for e in fhir["entry"]),
       f"the FHIR bundle withdraws {target}'s requests ({statuses})")
    rc, log = sl.verify(d, *keys)
    ck(rc == 0 and "ok   revisions/1" in log and "ok   revisions/2" in log, f"every revision verifies (exit {rc})")
ck.exit()
