"""`histoplan report sign` and `verify` on a report built from a real findings.json.

- A signed report verifies with the signer's key bound to their id (--pubkey ID=PUB.pem); without
  any registry or key it says "signature valid, signer NOT verified" and exits 4. The signatures
  are also checked independently here: report.json and the signed manifest are re-canonicalized by
  this script's own RFC 8785 code, hashed, and both Ed25519 signatures verified by the openssl
  command line; every file digest of the manifest is recomputed; signature.json and build.json
  validate against their schemas.
- Changing one byte of the signed report.json is detected (a digit, and a byte of whitespace
  added), as is a changed image, a replaced signature and a tampered audit log.
- A signature made with another key is rejected when the expected public key is given; a
  re-signed signature.json is caught by the key named inside the signed content.
- A second sign is refused; an amendment makes revision 2 with status amended, records who,
  when and what changed, and leaves revision 1 byte for byte as it was.
- A signed report cannot be rebuilt; amendments outside the signer's fields are refused.
- The audit log records build, sign and amend events in a valid hash chain; verify changes
  nothing in the folder.
(Tampering with each file in turn, deletions and truncations: test_report_sign_tamper.py; the
signer registry and key permissions: test_report_signers.py.)"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import sign_testlib as sl  # noqa: E402
from sign_testlib import canon, keypair, openssl_verify, sha  # noqa: E402

try:
    import jsonschema
except ImportError:  # the schema checks need Debian's python3-jsonschema
    jsonschema = None

ck = lib.Checks()


def verify(d, *keys):
    return sl.verify(d, *keys)


def schema_errors(name, doc):
    if not jsonschema:
        return []
    schema = lib.load(os.path.join(lib.SRC, "schemas", name))
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


with tempfile.TemporaryDirectory() as tmp:
    findings = lib.synthetic_findings(tmp)
    case = lib.case_file(tmp, patient=lib.PATIENT)
    key, pub = keypair(tmp, "pathologist")
    key2, pub2 = keypair(tmp, "other")
    d = os.path.join(tmp, "report")
    rc, log = lib.build(case, [findings], d)
    ck(rc == 0, f"build: {log.strip()[:200]}")

    rc, log = verify(d)
    ck(rc == 0 and "not signed yet" in log, "an unsigned report verifies as preliminary")
    build_rec = lib.load(os.path.join(d, "build.json"))
    ck(not schema_errors("build-record.schema.json", build_rec), "build.json validates against its schema")
    ck(all(sha(os.path.join(d, f)) == h for f, h in build_rec["files"].items()) and
       sorted(f for f in build_rec["files"] if f.startswith("images/")) ==
       sorted("images/" + n for n in os.listdir(os.path.join(d, "images"))) and
       {"report.json", "report.html", "report.fhir.json"} <= set(build_rec["files"]),
       "build.json names the SHA-256 of report.json, report.html, report.fhir.json and every image")
    first = json.loads(open(os.path.join(d, "audit.jsonl")).readline())
    ck(first["event"] == "build" and first["details"]["build_record_sha256"] == sha(os.path.join(d, "build.json"))
       and first["time"] == build_rec["built_at"], "the build event holds build.json's SHA-256 and its time")
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 0, f"sign: exit {rc} {log.strip()[:200]}")
    rev1 = os.path.join(d, "revisions", "1")
    audit_before = open(os.path.join(d, "audit.jsonl"), "rb").read()
    rc, log = verify(d)
    ck(rc == 4 and "ok   revisions/1" in log and "signature valid, signer NOT verified" in log,
       f"without a registry or --pubkey: every check holds, 'signature valid, signer NOT verified', exit 4 (got {rc})")
    ck(open(os.path.join(d, "audit.jsonl"), "rb").read() == audit_before, "verify changes nothing in the folder")
    rc, log = verify(d, ("dr-okafor", pub))
    ck(rc == 0 and "signer verified" in log and "verified: " in log, f"... exit 0 with the signer's key bound to their id ({rc})")
    rc, log = verify(d, ("dr-okafor", pub2))
    ck(rc == 1 and "not one of the keys given" in log, "the signer's signature is rejected for another expected key")
    rc, log = verify(d, ("dr-adams", pub))
    ck(rc == 1 and "key given for dr-adams" in log, "the signer's own key given for another id does not vouch for them")
    rc, log = lib.run(["report", "verify", d, "--pubkey", pub])
    ck(rc == 2 and "ID=PUB.pem" in log, "--pubkey without an id is refused as ambiguous (exit 2)")

    # Independent check: our own canonical form, SHA-256, and openssl's Ed25519 verification.
    with open(os.path.join(rev1, "report.json"), "rb") as f:
        raw = f.read()
    rep = json.loads(raw)
    sig = lib.load(os.path.join(rev1, "signature.json"))
    mine = canon(rep).encode()
    ck(mine == raw, "revision 1's report.json is exactly its RFC 8785 canonical form (independent code)")
    digest = hashlib.sha256(mine).digest()
    ck(digest.hex() == sig["report_sha256"], "its SHA-256 is the one signed")
    ck(openssl_verify(pub, digest, base64.b64decode(sig["signature"]), tmp),
       "openssl pkeyutl verifies the Ed25519 signature of that hash with the pathologist's public key")
    ck(not openssl_verify(pub2, digest, base64.b64decode(sig["signature"]), tmp), "... and not with another key")
    ck(rep["status"] == "final" and rep["revision"] == 1 and rep["sign_off"]["pathologist_id"] == "dr-okafor"
       and rep["sign_off"]["supersedes"]["revision"] == 0, "revision 1: final, who, when, what it supersedes")
    draft = lib.load(os.path.join(d, "report.json"))
    ck(rep["sign_off"]["supersedes"]["report_sha256"] == hashlib.sha256(canon(draft).encode()).hexdigest(),
       "revision 1 names the draft's canonical hash")
    # The manifest: canonical here, its own SHA-256, openssl's verification, every digest recomputed.
    raw_sig = open(os.path.join(rev1, "signature.json"), "rb").read()
    ck(canon(sig).encode() == raw_sig, "signature.json is stored in its RFC 8785 canonical form (independent code)")
    ck(not schema_errors("signature.schema.json", sig), f"signature.json validates against its schema "
       f"{schema_errors('signature.schema.json', sig)[:2]}")
    m = sig["manifest"]
    mdigest = hashlib.sha256(canon(m).encode()).digest()
    ck(mdigest.hex() == sig["manifest_sha256"], "manifest_sha256 is the SHA-256 of the manifest's canonical form")
    ck(openssl_verify(pub, mdigest, base64.b64decode(sig["manifest_signature"]), tmp),
       "openssl pkeyutl verifies the manifest's Ed25519 signature with the pathologist's public key")
    ck(not openssl_verify(pub2, mdigest, base64.b64decode(sig["manifest_signature"]), tmp), "... and not with another key")
    want = {f"revisions/1/{n}" for n in ("report.json", "report.html", "report.fhir.json")} | \
        {"images/" + n for n in os.listdir(os.path.join(d, "images"))}
    ck(set(m["files"]) == want and all(sha(os.path.join(d, f)) == h for f, h in m["files"].items()),
       f"the manifest names the SHA-256 of revision 1's report.json, HTML, FHIR and all {len(want) - 3} images")
    ck(m["report_signature"] == sig["signature"] and m["pathologist_id"] == "dr-okafor" and m["revision"] == 1 and
       m["supersedes"] == {"revision": 0, "report_sha256": rep["sign_off"]["supersedes"]["report_sha256"]},
       "the manifest binds the report signature, the signer, the revision and the draft it supersedes")
    log_lines = open(os.path.join(d, "audit.jsonl"), "rb").read().splitlines()
    ck(m["audit_log"] == {"events": 1, "last_line_sha256": hashlib.sha256(log_lines[0]).hexdigest()},
       "the manifest covers the audit log's head as it was when signing (1 line, its SHA-256)")
    ev = json.loads(log_lines[1])
    ck(ev["event"] == "sign" and ev["actor"] == "dr-okafor" and ev["time"] == sig["signed_at"] and
       ev["details"]["manifest_sha256"] == sig["manifest_sha256"] and ev["details"]["report_sha256"] == sig["report_sha256"],
       "the sign event follows, at the signing time, naming both hashes")
    fhir = open(os.path.join(rev1, "report.fhir.json")).read()
    ck(sig["signature"] in fhir, "the FHIR Provenance carries the report signature")
    # The signed category is the pathologist's: no longer "(suggested)" where it is read.
    dx0, dx1 = draft["diagnosis"], rep["diagnosis"]
    ck(dx0["display"].endswith("(suggested)") and dx1["category"] == dx0["category"] and
       dx1["display"] == dx0["display"].replace("(suggested)", "(confirmed by pathologist)") and
       dx1["suggested_by"] == "histoplan", f"signed unchanged: '{dx1['display']}', suggested_by histoplan")
    html1 = open(os.path.join(rev1, "report.html")).read()
    ck("(confirmed by pathologist)" in html1 and "proposed by histoplan" in html1 and "Suggested category" not in html1 and
       "(suggested)" not in html1, "report.html of revision 1: 'Category ... (confirmed by pathologist) ..., proposed by histoplan'")
    concl = [e["resource"] for e in json.loads(fhir)["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"][0]["conclusion"]
    ck("(confirmed by pathologist) (proposed by histoplan;" in concl and "suggested" not in concl,
       f"the FHIR conclusion says the pathologist confirmed it ({concl[:120]})")
    html0 = open(os.path.join(d, "report.html")).read()
    ck("Suggested category" in html0 and "suggested by" in html0, "the draft's report.html still says 'Suggested category'")

    # One byte changed: a digit of a number, and a space added.
    def tampered(edit, what):
        t = os.path.join(tmp, "t-" + what.replace(" ", "-"))
        shutil.copytree(d, t, symlinks=True)
        edit(t)
        rc, log = verify(t)
        ck(rc == 1 and "FAIL" in log, f"verify detects {what}: {sl.fails(log)[:2]}")
        shutil.rmtree(t)

    def flip_digit(t):
        p = os.path.join(t, "revisions", "1", "report.json")
        b = bytearray(open(p, "rb").read())
        i = b.index(b'"tissue_area_mm2":') + len(b'"tissue_area_mm2":')
        b[i] = ord("9") if b[i] != ord("9") else ord("8")
        open(p, "wb").write(bytes(b))

    def add_space(t):
        p = os.path.join(t, "revisions", "1", "report.json")
        b = open(p, "rb").read()
        open(p, "wb").write(b[:1] + b" " + b[1:])

    def change_image(t):
        imgs = sorted(os.listdir(os.path.join(t, "images")))
        p = os.path.join(t, "images", imgs[0])
        b = bytearray(open(p, "rb").read())
        b[-20] ^= 1
        open(p, "wb").write(bytes(b))

    def resign_other_key(t):
        # Someone re-signs the (unchanged) report with their own key: the signed content still
        # names the pathologist's key, so this is caught even without --pubkey.
        s = lib.load(os.path.join(t, "revisions", "1", "signature.json"))
        with open(os.path.join(tmp, "digest.bin"), "wb") as f:
            f.write(bytes.fromhex(s["report_sha256"]))
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key2, "-rawin", "-in", os.path.join(tmp, "digest.bin"),
                        "-out", os.path.join(tmp, "sig2.bin")], check=True)
        der = subprocess.run(["openssl", "pkey", "-in", key2, "-pubout", "-outform", "DER"], capture_output=True).stdout
        s["signature"] = base64.b64encode(open(os.path.join(tmp, "sig2.bin"), "rb").read()).decode()
        s["public_key"] = base64.b64encode(der[-32:]).decode()
        lib.write_json(os.path.join(t, "revisions", "1", "signature.json"), s)

    def edit_audit(t):
        p = os.path.join(t, "audit.jsonl")
        lines = open(p).read().splitlines(True)
        lines[0] = lines[0].replace('"build"', '"bulid"')
        open(p, "w").write("".join(lines))

    tampered(flip_digit, "one changed digit in the signed report.json")
    tampered(add_space, "one added byte of whitespace in the signed report.json")
    tampered(change_image, "one changed byte in an image")
    tampered(resign_other_key, "a signature.json re-signed with another key")
    tampered(edit_audit, "an edited audit log line")

    # A second sign is refused; nothing changes.
    before = sha(os.path.join(rev1, "report.json"))
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 1 and "already signed" in log and not os.path.exists(os.path.join(d, "revisions", "2")),
       "a second sign is refused")
    rc, log = lib.build(case, [findings], d, ["--overwrite"])
    ck(rc == 1 and "signed" in log and sha(os.path.join(rev1, "report.json")) == before,
       "a signed report cannot be rebuilt, even with --overwrite")

    # Amendments outside the signer's fields are refused.
    bad = lib.write_json(os.path.join(tmp, "bad-amend.json"),
                         {"reason": "typo", "changes": [{"largest_focus_mm": 3, "category": "invasive"}]})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-kim", "--key", key2, "--amend", bad])
    ck(rc == 1 and "cannot be amended" in log and not os.path.exists(os.path.join(d, "revisions", "2")),
       "amending a measured number is refused")
    # A proper amendment: revision 2, amended, revision 1 untouched.
    amend = lib.write_json(os.path.join(tmp, "amend.json"), {
        "reason": "Category revised after deeper levels; ER approved",
        "changes": [{"category": "in-situ"},
                    {"suggestion": "CP-DCIS-ER", "decision": "approved", "note": "Ordered on block A2"}]})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-kim", "--key", key2, "--amend", amend])
    ck(rc == 0 and os.path.isdir(os.path.join(d, "revisions", "2")), f"an amendment is signed as revision 2 {log.strip()[:150]}")
    ck(sha(os.path.join(rev1, "report.json")) == before, "revision 1 is kept byte for byte")
    if os.path.isdir(os.path.join(d, "revisions", "2")):
        r2 = lib.load(os.path.join(d, "revisions", "2", "report.json"))
        so = r2["sign_off"]
        ck(r2["status"] == "amended" and r2["revision"] == 2 and so["pathologist_id"] == "dr-kim" and
           so["reason"].startswith("Category revised") and so["supersedes"]["revision"] == 1 and
           so["supersedes"]["report_sha256"] == lib.load(os.path.join(rev1, "signature.json"))["report_sha256"],
           "revision 2: amended, who, why, and the hash of revision 1")
        ck([(c["id"], c["change"]) for c in so["amendments"]] == [("category", "category"), ("CP-DCIS-ER", "decision"),
                                                                   ("CP-DCIS-ER", "note")] and
           so["amendments"][0]["before"] == "invasive-carcinoma" and so["amendments"][0]["after"] == "in-situ-carcinoma",
           "revision 2 records what changed, before and after")
        ck(r2["diagnosis"]["category"] == "in-situ-carcinoma" and r2["diagnosis"]["suggested_by"] == "pathologist" and
           r2["diagnosis"]["code"]["code"] == "86616005" and r2["diagnosis"]["display"].endswith("(pathologist)"),
           "the category is the pathologist's, with its SNOMED CT code")
        f2 = json.load(open(os.path.join(d, "revisions", "2", "report.fhir.json")))
        concl2 = [e["resource"] for e in f2["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"][0]["conclusion"]
        ck("set by the signing pathologist" in concl2, f"revision 2's FHIR conclusion: set by the pathologist ({concl2[:100]})")
        ck([x["decision"] for x in r2["care_plan"]["suggestions"] if x["rule_id"] == "CP-DCIS-ER"] == ["approved"],
           "the decision is recorded")
    rc, log = verify(d)
    ck(rc == 4 and "ok   revisions/2" in log and "ok   revisions/1" in log, "both revisions verify (signers unverified)")
    rc, log = verify(d, ("dr-okafor", pub), ("dr-kim", pub2))
    ck(rc == 0, "... with each signer's public key given")
    rc, log = verify(d, ("dr-okafor", pub))
    ck(rc == 1 and "FAIL revisions/2: signed by dr-kim" in log, "... and not when only the first signer's key is given")
    events = [json.loads(l)["event"] for l in open(os.path.join(d, "audit.jsonl"))]
    ck(events == ["build", "sign", "amend"], f"the audit log holds the build, sign and amend events: {events}")
    # The chain, recomputed here.
    lines = open(os.path.join(d, "audit.jsonl"), "rb").read().splitlines()
    prev, ok = "0" * 64, True
    for i, l in enumerate(lines):
        e = json.loads(l)
        ok &= e["seq"] == i + 1 and e["prev_sha256"] == prev
        prev = hashlib.sha256(l).hexdigest()
    ck(ok, f"the audit log's {len(lines)} lines form an unbroken SHA-256 chain")
    ck(not [s for s in (lib.PATIENT["name"], lib.ACCESSION, "MRN-QX") if s in open(os.path.join(d, "audit.jsonl")).read()],
       "the audit log holds no identifier")
    # Keys that are not Ed25519 are refused, naming the algorithm.
    rsa = os.path.join(tmp, "rsa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", rsa],
                   check=True, capture_output=True)
    d2 = os.path.join(tmp, "report2")
    lib.build(case, [findings], d2)
    rc, log = lib.run(["report", "sign", d2, "--pathologist", "dr-x", "--key", rsa])
    ck(rc == 1 and "RSA" in log and not os.path.exists(os.path.join(d2, "revisions", "1")), "an RSA key is refused")
ck.exit()
