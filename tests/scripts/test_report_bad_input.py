"""`histoplan report build` on bad input: each is refused with exit 1 and a message that names
what was wrong (never the patient's or the case's identifiers), no report folder or temporary is
left behind, and an existing unsigned report is left as it was when a rebuild fails.

Inputs: case files that are not JSON, empty, not an object, without accession, with an unknown
or mistyped field, out-of-range age or BI-RADS, a bad birth date or laterality; findings of
another case, findings of another model version than the case file asks for, findings of two
different models, the same slide twice, a truncated findings file, a findings file of another
schema version, a missing findings file, a findings file missing a member; usage errors (exit 2).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402

ck = lib.Checks()


def leftovers(tmp, name):
    return [x for x in os.listdir(tmp) if x.startswith(name)]


with tempfile.TemporaryDirectory() as tmp:
    findings = lib.synthetic_findings(tmp)
    good = lib.case_file(tmp, "good.json", patient=lib.PATIENT)

    def refused(label, case, fl, want, extra=()):
        out = os.path.join(tmp, "out")
        rc, log = lib.build(case, fl, out, extra)
        secret = [s for s in (lib.PATIENT["name"], lib.ACCESSION, "MRN-QX", "OTHER-999") if s in log]
        ck(rc == 1 and want.lower() in log.lower() and not leftovers(tmp, "out") and not secret,
           f"{label}: exit {rc}, '{log.strip()[:150]}'")

    def case_text(name, text):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    refused("case file not JSON", case_text("c1.json", '{"accession": "S26-0042", '), [findings], "not valid JSON")
    refused("empty case file", case_text("c2.json", ""), [findings], "empty")
    refused("case file not an object", case_text("c3.json", "[1, 2]"), [findings], "object")
    refused("no accession", lib.write_json(os.path.join(tmp, "c4.json"), {"patient": lib.PATIENT}), [findings],
            "accession")
    refused("unknown field", lib.write_json(os.path.join(tmp, "c5.json"), {"accession": lib.ACCESSION, "pateint": {}}),
            [findings], "unknown field 'pateint'")
    refused("age as text", lib.case_file(tmp, "c6.json", clinical={"age_years": "forty"}), [findings],
            "clinical.age_years")
    refused("age out of range", lib.case_file(tmp, "c7.json", clinical={"age_years": 212}), [findings],
            "clinical.age_years")
    refused("BI-RADS 7", lib.case_file(tmp, "c8.json", clinical={"birads": 7}), [findings], "clinical.birads")
    refused("bad birth date", lib.case_file(tmp, "c9.json", patient={"birth_date": "02/04/1985"}), [findings],
            "patient.birth_date")
    refused("bad laterality", lib.case_file(tmp, "c10.json", specimen={"laterality": "middle"}), [findings],
            "specimen.laterality")
    refused("history not a list", lib.case_file(tmp, "c11.json", clinical={"history": "BRCA1"}), [findings],
            "clinical.history")
    refused("missing case file", os.path.join(tmp, "absent.json"), [findings], "absent.json")

    # Findings of another case.
    other = lib.variant(findings, os.path.join(tmp, "other", "findings.json"),
                        lambda d: d["case"].update(accession="OTHER-999"))
    refused("findings of another case", good, [other], "another case")
    refused("findings of another case beside good ones", good, [findings, other], "another case")
    # Another model version than the case file states.
    want_v2 = lib.case_file(tmp, "c12.json", requested_model={"name": "histoplan-default-densenet", "version": "2.0.0"})
    refused("findings of another model version than stated", want_v2, [findings], "asks for histoplan-default-densenet version 2.0.0")
    want_other = lib.case_file(tmp, "c13.json", requested_model={"name": "some-other-model"})
    refused("findings of another model than stated", want_other, [findings], "some-other-model")
    # Two models in one case.
    def other_model(d):
        d["model"]["version"] = "1.1.0"
        d["slide"]["sha256"] = "0" * 64
        d["slide"]["slide_id"] = "slide-b"
    mixed = lib.variant(findings, os.path.join(tmp, "mixed", "findings.json"), other_model)
    refused("findings of two model versions", good, [findings, mixed], "one report needs one model")
    refused("the same slide twice", good, [findings, findings], "same slide")
    # Broken findings files.
    with open(findings) as f:
        text = f.read()
    trunc = os.path.join(tmp, "trunc", "findings.json")
    os.makedirs(os.path.dirname(trunc))
    with open(trunc, "w") as f:
        f.write(text[: len(text) // 2])
    refused("truncated findings", good, [trunc], "not valid JSON")
    newer = lib.variant(findings, os.path.join(tmp, "newer", "findings.json"), lambda d: d.update(schema_version="9.0.0"))
    refused("findings of another schema version", good, [newer], "schema_version 9.0.0")
    nomember = lib.variant(findings, os.path.join(tmp, "nomember", "findings.json"), lambda d: d["tissue"].pop("area_mm2"))
    refused("findings missing a member", good, [nomember], "/tissue/area_mm2 is missing")
    badtype = lib.variant(findings, os.path.join(tmp, "badtype", "findings.json"),
                          lambda d: d["regions"][0].update(area_mm2="big"))
    refused("findings with a mistyped member", good, [badtype], "/regions/0/area_mm2")
    escape = lib.variant(findings, os.path.join(tmp, "escape", "findings.json"),
                         lambda d: d["outputs"].update(overlay="../../etc/passwd"))
    refused("findings naming an image outside their folder", good, [escape], "inside the findings' folder")
    refused("a --slide that is none of the analysed slides", good, [findings], "none of the analysed slides",
            ["--slide", lib.CMU])
    refused("a --slide that is not a slide", good, [findings], "none of the analysed slides", ["--slide", good])
    refused("missing findings", good, [os.path.join(tmp, "nowhere", "findings.json")], "nowhere")
    noover = lib.variant(findings, os.path.join(tmp, "noover", "findings.json"), lambda d: None)
    os.remove(os.path.join(tmp, "noover", "overlay.png"))
    refused("findings whose overlay image is missing", good, [noover], "overlay.png")

    # An existing unsigned report survives a failed rebuild; it needs --overwrite to be replaced.
    out = os.path.join(tmp, "kept")
    rc, _ = lib.build(good, [findings], out)
    with open(os.path.join(out, "report.json"), "rb") as f:
        before = f.read()
    rc, log = lib.build(good, [findings], out)
    ck(rc == 1 and "--overwrite" in log, "an existing report is not replaced without --overwrite")
    rc, log = lib.build(good, [other], out, ["--overwrite"])
    with open(os.path.join(out, "report.json"), "rb") as f:
        ck(rc == 1 and f.read() == before and not leftovers(tmp, "kept."),
           "a failed --overwrite rebuild leaves the existing report as it was")
    rc, log = lib.build(good, [findings], out, ["--overwrite"])
    events = [l for l in open(os.path.join(out, "audit.jsonl"))]
    ck(rc == 0 and len(events) == 2 and not leftovers(tmp, "kept."),
       "--overwrite replaces it and carries the audit log over (2 build events)")

    # Usage errors: exit 2.
    for args in (["report"], ["report", "build"], ["report", "build", good], ["report", "sign", out],
                 ["report", "frobnicate"], ["report", "verify", out, "--colour"]):
        rc, log = lib.run(args)
        ck(rc == 2 and "usage" in log, f"{' '.join(args[1:]) or 'no subcommand'}: exit 2 with usage")
    rc, log = lib.run(["report", "--help"])
    ck(rc == 0 and "report build" in log and "report sign" in log, "--help: exit 0")
    rc, log = lib.run(["report", "verify", os.path.join(tmp, "nothing-here")])
    ck(rc == 1, "verify of a folder that is not a report: exit 1")
ck.exit()
