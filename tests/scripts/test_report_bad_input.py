"""`histoplan report build` on bad input: each is refused with exit 1 and a message that names
what was wrong (never the patient's or the case's identifiers), no report folder or temporary is
left behind, and an existing unsigned report is left as it was when a rebuild fails.

Inputs: case files that are not JSON, empty, not an object, without accession, with an unknown
or mistyped field, out-of-range age or BI-RADS, a bad birth date or laterality, invalid UTF-8,
a duplicate member name; findings of another case, findings without a case accession (unless
--assign-case), findings of another model version than the case file asks for, findings of two
different models, the same slide twice, a truncated findings file, a findings file of another
schema version, a missing findings file, a findings file missing a member, numbers out of range
(a region box far off the slide, a slide width of 1e-300, a probability above 1, 1e999),
duplicate member names, duplicate region ids, an overlay that is a symbolic link to another
slide's; a rule table with a duplicate member name; usage errors (exit 2).

Folders: --overwrite never replaces a folder histoplan did not make (its files stay), and the
temporaries of a build that was killed (OUT.partial-PID, OUT.old-PID) are cleaned up by the next
build once their process has ended (a report moved aside is put back).
"""
import json
import os
import shutil
import subprocess
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
        shutil.rmtree(out, ignore_errors=True)  # a wrongly built report must not fail the next case

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

    # Numbers out of range: refused with the member named, no crash, nothing left behind.
    def region0(**kw):
        return lambda d: d["regions"][0].update(**kw)
    refused("a region box far off the slide", good,
            [lib.variant(findings, os.path.join(tmp, "bbox", "findings.json"),
                         region0(bbox_level0=[1e12, 1e12, 1e12, 1e12]))], "/regions/0/bbox_level0")
    refused("a region box of negative size", good,
            [lib.variant(findings, os.path.join(tmp, "bbox2", "findings.json"),
                         region0(bbox_level0=[10, 10, -5, 20]))], "/regions/0/bbox_level0")
    refused("a slide width of 1e-300", good,
            [lib.variant(findings, os.path.join(tmp, "tiny", "findings.json"),
                         lambda d: d["slide"].update(level0_width_px=1e-300))], "/slide/level0_width_px")
    refused("a probability above 1", good,
            [lib.variant(findings, os.path.join(tmp, "prob", "findings.json"), region0(mean_prob=1.5))],
            "/regions/0/mean_prob")
    refused("an evidence tile off the slide", good,
            [lib.variant(findings, os.path.join(tmp, "tile", "findings.json"),
                         lambda d: d["regions"][0]["evidence_tiles"][0].update(x=-4e9))],
            "/regions/0/evidence_tiles/0/x")
    refused("an area below 0", good,
            [lib.variant(findings, os.path.join(tmp, "area", "findings.json"),
                         lambda d: d["tissue"].update(area_mm2=-1))], "/tissue/area_mm2")

    def text_variant(name, edit):
        """A findings copy whose JSON text is changed by `edit(text)` (what json.dump cannot write)."""
        path = lib.variant(findings, os.path.join(tmp, name, "findings.json"), lambda d: None)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(edit(text))
        return path
    refused("a number beyond a double (1e999)", good,
            [text_variant("inf", lambda t: t.replace('"area_mm2": ', '"area_mm2": 1e999, "x_was": ', 1))],
            "out of range")
    refused("findings with a duplicate member name", good,
            [text_variant("dupkey", lambda t: t.replace('{', '{"status": "draft", ', 1))],
            'member name "status" appears more than once')
    with open(findings) as f:
        nregions = len(json.load(f)["regions"])
    ck(nregions >= 2, f"the test findings have {nregions} regions")
    dup_ids = lib.variant(findings, os.path.join(tmp, "dupid", "findings.json"),
                          lambda d: d["regions"][1].update(id=d["regions"][0]["id"]))
    refused("findings with two regions of one id", good, [dup_ids], "/regions/1/id")

    # Images only from inside the findings' folder, never through a link: an overlay that is a
    # symbolic link to another slide's file is refused.
    linked = lib.variant(findings, os.path.join(tmp, "linked", "findings.json"), lambda d: None)
    other_overlay = os.path.join(tmp, "another-slide-overlay.png")
    shutil.copyfile(os.path.join(os.path.dirname(findings), "overlay.png"), other_overlay)
    os.remove(os.path.join(tmp, "linked", "overlay.png"))
    os.symlink(other_overlay, os.path.join(tmp, "linked", "overlay.png"))
    refused("an overlay that is a symbolic link", good, [linked], "symbolic link")

    # Invalid UTF-8 in a case file: refused at build (a report quoting it could never be signed),
    # naming the field, never quoting it.
    bad_utf8 = os.path.join(tmp, "c14.json")
    with open(bad_utf8, "wb") as f:
        f.write(b'{"accession": "S26-0042", "patient": {"name": "Quixley \xff\xfe Zanthorpe"}}')
    refused("a case file with invalid UTF-8", bad_utf8, [findings], "/patient/name is not valid UTF-8")
    refused("a case file with a duplicate member name",
            case_text("c15.json", '{"accession": "S26-0042", "clinical": {"birads": 2, "birads": 5}}'), [findings],
            "more than once")
    with open(os.path.join(lib.SRC, "report", "rules", "care-plan-rules.json")) as f:
        rules_text = f.read()
    dup_rules = os.path.join(tmp, "dup-rules.json")
    with open(dup_rules, "w") as f:
        f.write(rules_text.replace('{', '{"version": "9", ', 1))
    refused("a rule table with a duplicate member name", good, [findings], 'member name "version"',
            ["--rules", dup_rules])

    # Findings without a case accession belong to no case: refused unless --assign-case.
    anon = lib.variant(findings, os.path.join(tmp, "anon", "findings.json"),
                       lambda d: d["case"].update(accession=None))
    refused("findings without a case accession", good, [anon], "--assign-case")
    assigned = os.path.join(tmp, "assigned")
    rc, log = lib.build(good, [anon], assigned, ["--assign-case"])
    audit = [json.loads(l) for l in open(os.path.join(assigned, "audit.jsonl"))] if rc == 0 else []
    ck(rc == 0 and audit and audit[-1]["details"].get("findings_assigned_to_case_sha256"),
       f"--assign-case builds the report and the audit log records the assigned findings (exit {rc})")
    rc, log = lib.build(good, [other], os.path.join(tmp, "assigned2"), ["--assign-case"])
    ck(rc == 1 and "another case" in log, "--assign-case does not take findings of another case")
    shutil.rmtree(assigned, ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "assigned2"), ignore_errors=True)

    # --overwrite replaces only a report folder histoplan made.
    mine = os.path.join(tmp, "mydata")
    os.makedirs(os.path.join(mine, "sub"))
    with open(os.path.join(mine, "sub", "notes.txt"), "w") as f:
        f.write("a user's file\n")
    rc, log = lib.build(good, [findings], mine, ["--overwrite"])
    ck(rc == 1 and "not a report folder made by histoplan" in log and
       os.path.isfile(os.path.join(mine, "sub", "notes.txt")) and sorted(os.listdir(mine)) == ["sub"]
       and not leftovers(tmp, "mydata."),
       f"--overwrite refuses a folder histoplan did not make and leaves its files (exit {rc})")

    # A build killed before its last rename leaves OUT.partial-PID; the next build removes it once
    # that process has ended. A build killed between moving the old report aside and putting the
    # new one in place leaves OUT.old-PID and no OUT: the old report is put back.
    def dead_build_folder(name):
        """A complete report folder made by a build process that has since ended, and its pid."""
        p = subprocess.Popen([lib.BIN, "report", "build", good, findings, "--out", os.path.join(tmp, name)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait()
        return os.path.join(tmp, name), p.pid
    stale, pid = dead_build_folder("killed-build")
    part = os.path.join(tmp, f"rep.partial-{pid}")
    os.rename(stale, part)
    rc, log = lib.build(good, [findings], os.path.join(tmp, "rep"))
    ck(rc == 0 and not os.path.exists(part) and not leftovers(tmp, "rep."),
       f"a dead build's rep.partial-{pid} is removed by the next build (exit {rc})")
    user_part = os.path.join(tmp, "rep.partial-1")
    os.makedirs(user_part)
    with open(os.path.join(user_part, "keep.txt"), "w") as f:
        f.write("not histoplan's\n")
    rc, log = lib.build(good, [findings], os.path.join(tmp, "rep"), ["--overwrite"])
    ck(rc == 0 and os.path.isfile(os.path.join(user_part, "keep.txt")),
       "a folder named like a temporary but without histoplan's marker is left alone")
    shutil.rmtree(user_part)
    kept, pid = dead_build_folder("moved-aside")
    with open(os.path.join(kept, "report.json"), "rb") as f:
        kept_bytes = f.read()
    os.rename(kept, os.path.join(tmp, f"back.old-{pid}"))
    rc, log = lib.build(good, [findings], os.path.join(tmp, "back"))
    with open(os.path.join(tmp, "back", "report.json"), "rb") as f:
        ck(rc == 1 and "--overwrite" in log and f.read() == kept_bytes and not leftovers(tmp, "back."),
           f"a report a dead build had moved aside is put back, and then needs --overwrite (exit {rc})")

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
        # One line naming the problem and the --help hint, not the whole usage text.
        ck(rc == 2 and "--help" in log and len(log.strip().splitlines()) <= 3,
           f"{' '.join(args[1:]) or 'no subcommand'}: exit 2, a short message and the --help hint ({log.strip()[:120]})")
    rc, log = lib.run(["report", "--help"])
    ck(rc == 0 and "report build" in log and "report sign" in log, "--help: exit 0")
    rc, log = lib.run(["report", "verify", os.path.join(tmp, "nothing-here")])
    ck(rc == 1, "verify of a folder that is not a report: exit 1")
ck.exit()
