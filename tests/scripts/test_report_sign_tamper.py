"""Every byte of a signed report folder is accounted for: `histoplan report verify` on a report
built from a real findings.json, signed (revision 1) and amended (revision 2).

- Each file of the folder in turn (the draft's report.json, report.html, report.fhir.json and
  build.json, every image, each revision's four files, audit.jsonl line by line) gets one byte
  changed: verify exits 1 with a FAIL line naming that file. The pathologist-visible edits of the
  issue too: "Invasive carcinoma" replaced by "Benign tissue" in a revision's HTML, and the SNOMED
  CT code replaced in its FHIR bundle.
- Deleting each revision, all of revisions/, single files, and adding a file are detected;
  `report build --overwrite` refuses a folder whose revisions/ was deleted; `sign --amend` refuses
  a folder whose latest revision was deleted (it would make "revision 2" again).
- Truncating audit.jsonl (its last line, its last half of lines, half its bytes) is detected.
- A draft edited after `report build` is refused by `report sign` (report.json, report.html, an
  image), even when the build record and the audit log are rewritten to match (the page is then
  not what report.json renders to); nothing is signed.
- A revision re-signed consistently with the pathologist's own key but lacking status,
  sign_off.pathologist_id or sign_off gives a clean FAIL naming the field, never a crash; sign
  refuses to amend it."""
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import sign_testlib as sl  # noqa: E402

ck = lib.Checks()


def names(log, rel):
    """True when a FAIL line names `rel` (as the file the line is about, not a longer path)."""
    if rel == "audit.jsonl":
        return any("audit.jsonl" in f for f in sl.fails(log))
    pat = re.compile(r"(^FAIL |\s)" + re.escape(rel) + r"(:|\s|$)")
    return any(pat.search(f) for f in sl.fails(log))


def flip_middle(path):
    """Changes one byte near the middle: a digit to another digit in text (so JSON stays JSON
    where it can), else a letter to another letter, else one bit."""
    b = bytearray(open(path, "rb").read())
    mid = len(b) // 2
    order = sorted(range(len(b)), key=lambda i: abs(i - mid))
    for cls, repl in ((b"0123456789", lambda c: ord("7") if c != ord("7") else ord("3")),
                      (b"abcdefghijklmnopqrstuvwxyz", lambda c: ord("q") if c != ord("q") else ord("k"))):
        if path.endswith((".json", ".html", ".jsonl")):
            for i in order[:4096]:
                if b[i] in cls:
                    b[i] = repl(b[i])
                    open(path, "wb").write(bytes(b))
                    return
    b[mid] ^= 1
    open(path, "wb").write(bytes(b))


def all_files(d):
    """Every file of the report folder but .histoplan-output, the marker that says histoplan
    made the folder (for --overwrite, which a signed report refuses anyway): not report content."""
    out = []
    for root, _, files in os.walk(d):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), d)
            if rel != ".histoplan-output":
                out.append(rel)
    return sorted(out)


with tempfile.TemporaryDirectory() as tmp:
    findings = lib.synthetic_findings(tmp)
    case = lib.case_file(tmp, patient=lib.PATIENT)
    key, pub = sl.keypair(tmp, "okafor")
    key2, pub2 = sl.keypair(tmp, "kim")
    keys = (("dr-okafor", pub), ("dr-kim", pub2))
    d = os.path.join(tmp, "report")
    rc, log = lib.build(case, [findings], d)
    ck(rc == 0, f"build: {log.strip()[:200]}")
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 0, f"sign: {log.strip()[:200]}")
    amend = lib.write_json(os.path.join(tmp, "amend.json"), {"category": "in-situ", "reason": "Deeper levels"})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-kim", "--key", key2, "--amend", amend])
    ck(rc == 0, f"amend: {log.strip()[:200]}")
    rc, log = sl.verify(d, *keys)
    ck(rc == 0 and "ok   revisions/2" in log, f"the signed and amended report verifies (exit {rc})")
    if rc != 0:
        print(log)

    t = os.path.join(tmp, "t")

    def check_tamper(what, edit, rel):
        sl.copy(d, t)
        edit(t)
        rc, log = sl.verify(t, *keys)
        ok = ck(rc == 1 and names(log, rel), f"{what}: exit {rc}, named {rel}: {sl.fails(log)[:1]}")
        if not ok:
            print(log)

    # One byte changed in each file in turn.
    files = all_files(d)
    ck(len([f for f in files if f.startswith("images/")]) >= 2 and "build.json" in files and
       "revisions/2/signature.json" in files, f"the folder holds images, build.json and two revisions: {len(files)} files")
    for rel in files:
        check_tamper(f"one byte changed in {rel}", lambda x, rel=rel: flip_middle(os.path.join(x, rel)), rel)

    # Each line of the audit log edited (the last one has no successor to break).
    n_lines = len(open(os.path.join(d, "audit.jsonl")).read().splitlines())
    for k in range(n_lines):
        def edit_line(x, k=k):
            p = os.path.join(x, "audit.jsonl")
            lines = open(p).read().splitlines(True)
            lines[k] = lines[k].replace('"time":"2', '"time":"1', 1)
            open(p, "w").write("".join(lines))
        check_tamper(f"audit.jsonl line {k + 1}'s time edited", edit_line, "audit.jsonl")

    def respace_last(x):
        p = os.path.join(x, "audit.jsonl")
        lines = open(p).read().splitlines(True)
        lines[-1] = lines[-1].replace('","event"', '", "event"', 1)
        open(p, "w").write("".join(lines))
    check_tamper("a space added to the audit log's last line", respace_last, "audit.jsonl")

    # What the pathologist sees: the diagnosis in a revision's page and the code in its bundle.
    def benign_html(x):
        p = os.path.join(x, "revisions", "1", "report.html")
        s = open(p).read()
        ck("Invasive carcinoma" in s, "revision 1's page says Invasive carcinoma")
        open(p, "w").write(s.replace("Invasive carcinoma", "Benign tissue"))
    check_tamper("'Invasive carcinoma' replaced by 'Benign tissue' in revision 1's HTML", benign_html,
                 "revisions/1/report.html")

    def other_code(x):
        p = os.path.join(x, "revisions", "1", "report.fhir.json")
        s = open(p).read()
        ck("82711006" in s, "revision 1's bundle codes infiltrating duct carcinoma (SNOMED CT 82711006)")
        open(p, "w").write(s.replace("82711006", "35917007"))
    check_tamper("the SNOMED CT code replaced in revision 1's FHIR bundle", other_code, "revisions/1/report.fhir.json")

    # Deletions and additions.
    for rev in ("1", "2"):
        check_tamper(f"revisions/{rev} deleted", lambda x, rev=rev: shutil.rmtree(os.path.join(x, "revisions", rev)),
                     f"revisions/{rev}")
    for rel in ("revisions/2/report.html", "revisions/1/signature.json", "build.json", "report.fhir.json",
                [f for f in files if f.startswith("images/")][0], "audit.jsonl"):
        check_tamper(f"{rel} deleted", lambda x, rel=rel: os.remove(os.path.join(x, rel)), rel)
    check_tamper("a file added to revisions/1", lambda x: open(os.path.join(x, "revisions/1/note.txt"), "w").write("x"),
                 "revisions/1/note.txt")
    check_tamper("an image added", lambda x: shutil.copy(os.path.join(x, files[files.index(
        [f for f in files if f.startswith("images/")][0])]), os.path.join(x, "images", "extra.png")), "images/extra.png")

    sl.copy(d, t)
    shutil.rmtree(os.path.join(t, "revisions"))
    rc, log = sl.verify(t, *keys)
    ck(rc == 1 and names(log, "revisions/1") and names(log, "revisions/2") and "not signed yet" not in log,
       f"all of revisions/ deleted: exit {rc}, both named, never 'not signed yet'")
    rc, log = lib.build(case, [findings], t, ["--overwrite"])
    ck(rc == 1 and "signed" in log and not os.path.isdir(os.path.join(t, "revisions")),
       f"build --overwrite refuses a folder whose audit log records a signature: {log.strip()[:160]}")
    sl.copy(d, t)
    shutil.rmtree(os.path.join(t, "revisions", "2"))
    rc, log = lib.run(["report", "sign", t, "--pathologist", "dr-kim", "--key", key2, "--amend", amend])
    ck(rc == 1 and "revisions/2" in log and not os.path.exists(os.path.join(t, "revisions", "2")),
       f"sign --amend refuses a folder whose revision 2 was deleted: {log.strip()[:160]}")

    # Truncating the audit log.
    def keep_lines(n):
        def edit(x):
            p = os.path.join(x, "audit.jsonl")
            lines = open(p).read().splitlines(True)
            open(p, "w").write("".join(lines[:n]))
        return edit
    check_tamper("audit.jsonl's last line removed", keep_lines(n_lines - 1), "audit.jsonl")
    check_tamper("audit.jsonl's last half of lines removed", keep_lines(n_lines // 2), "audit.jsonl")

    def half_bytes(x):
        p = os.path.join(x, "audit.jsonl")
        b = open(p, "rb").read()
        open(p, "wb").write(b[:len(b) // 2])
    check_tamper("audit.jsonl cut to half its bytes", half_bytes, "audit.jsonl")

    # A draft edited after report build is never signed.
    d2 = os.path.join(tmp, "draft")
    rc, log = lib.build(case, [findings], d2)
    ck(rc == 0, "a second draft built")

    def sign_refused(what, edit, rel, verify_fails=True):
        sl.copy(d2, t)
        edit(t)
        rc, log = lib.run(["report", "sign", t, "--pathologist", "dr-okafor", "--key", key])
        ok = ck(rc == 1 and rel in log and not os.path.exists(os.path.join(t, "revisions", "1")),
                f"sign refuses {what}, naming {rel}: {log.strip()[:220]}")
        if verify_fails:
            rc2, log2 = sl.verify(t, *keys)
            ck(rc2 == 1 and rel in log2, f"... and verify fails it too, naming {rel} (exit {rc2})")

    def other_accession(x):
        p = os.path.join(x, "report.json")
        s = open(p).read()
        ck(lib.ACCESSION in s, "the draft holds the accession")
        open(p, "w").write(s.replace(lib.ACCESSION, "S26-0043"))
    sign_refused("a draft whose accession was edited", other_accession, "report.json")

    def bigger_focus(x):
        p = os.path.join(x, "report.json")
        rep = lib.load(p)
        rep["case_findings"]["invasive"]["largest_focus_mm"] += 10
        lib.write_json(p, rep)
    sign_refused("a draft whose focus size was edited", bigger_focus, "report.json")
    sign_refused("a draft whose page was edited",
                 lambda x: open(os.path.join(x, "report.html"), "a").write("<p>Benign tissue</p>"), "report.html")
    sign_refused("a draft whose image was changed",
                 lambda x: flip_middle(os.path.join(x, [f for f in files if f.startswith("images/")][0])), "images/")

    def forged_record(x):
        # The edit, and the build record and the audit log rewritten to match it.
        other_accession(x)
        rec = lib.load(os.path.join(x, "build.json"))
        rec["files"]["report.json"] = sl.sha(os.path.join(x, "report.json"))
        body = (sl.canon(rec) + "\n").encode()
        open(os.path.join(x, "build.json"), "wb").write(body)
        p = os.path.join(x, "audit.jsonl")
        line = json.loads(open(p).readline())
        old = line["details"]["build_record_sha256"]
        text = open(p).read()
        open(p, "w").write(text.replace(old, hashlib.sha256(body).hexdigest()))
        rc, log = sl.verify(x)
        ck(rc == 0, f"(the forged build record itself passes verify: exit {rc})")
    sign_refused("a draft edited with its build record and audit log rewritten", forged_record, "report.html",
                 verify_fails=False)

    # A consistently re-signed revision that lacks the fields verify prints.
    for what, edit, word in (
            ("status", lambda r: r.pop("status"), "has no status"),
            ("sign_off.pathologist_id", lambda r: r["sign_off"].pop("pathologist_id"), "sign_off.pathologist_id"),
            ("sign_off", lambda r: r.pop("sign_off"), "has no sign_off")):
        sl.copy(d, t)
        sl.resign(t, 1, edit, key, tmp)
        rc, log = sl.verify(t, *keys)
        ck(rc == 1 and word in log and names(log, "revisions/1/report.json"),
           f"a revision re-signed without {what}: a clean FAIL naming it (exit {rc}): {sl.fails(log)[:1]}")
        sl.resign(t, 2, edit, key2, tmp)
        rc, log = lib.run(["report", "sign", t, "--pathologist", "dr-kim", "--key", key2, "--amend", amend])
        ck(rc == 1 and "fails verification" in log and not os.path.exists(os.path.join(t, "revisions", "3")),
           f"... and sign --amend refuses it cleanly (exit {rc})")
ck.exit()
