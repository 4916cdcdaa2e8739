"""`histoplan report sign` and `verify` on a report built from a real findings.json.

- A signed report verifies, with and without the signer's public key; the signature is also
  checked independently here: report.json is re-canonicalized by this script's own RFC 8785
  code, hashed, and the Ed25519 signature verified by the openssl command line.
- Changing one byte of the signed report.json is detected (a digit, and a byte of whitespace
  added), as is a changed image, a replaced signature and a tampered audit log.
- A signature made with another key is rejected when the expected public key is given; a
  re-signed signature.json is caught by the key named inside the signed content.
- A second sign is refused; an amendment makes revision 2 with status amended, records who,
  when and what changed, and leaves revision 1 byte for byte as it was.
- A signed report cannot be rebuilt; amendments outside the signer's fields are refused.
- The audit log records build, sign, amend and verify events in a valid hash chain."""
import base64
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402

ck = lib.Checks()


def es6_number(v):
    """ECMAScript Number.prototype.toString, as RFC 8785 asks (written here independently)."""
    if v == 0:
        return "0"
    if isinstance(v, int) and abs(v) < 10 ** 21:
        return str(v)
    v = float(v)
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)  # shortest round-trip digits
    mant, _, exp = r.partition("e")
    digits = mant.replace("-", "").replace(".", "").lstrip("0") or "0"
    neg = v < 0
    # decimal exponent n such that v = 0.digits * 10^n
    if exp:
        point = mant.replace("-", "").find(".")
        point = len(mant.replace("-", "")) if point < 0 else point
        n = int(exp) + point
    else:
        a = mant.replace("-", "")
        ip, _, fp = a.partition(".")
        if ip.strip("0"):
            n = len(ip.lstrip("0"))
        else:
            n = -(len(fp) - len(fp.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return ("-" if neg else "") + s


def canon(o):
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, (int, float)):
        return es6_number(o)
    if isinstance(o, str):
        return json.dumps(o, ensure_ascii=False)
    if isinstance(o, list):
        return "[" + ",".join(canon(x) for x in o) + "]"
    keys = sorted(o, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon(o[k]) for k in keys) + "}"


def openssl_verify(pub_pem, digest, sig, tmp):
    with open(os.path.join(tmp, "digest.bin"), "wb") as f:
        f.write(digest)
    with open(os.path.join(tmp, "sig.bin"), "wb") as f:
        f.write(sig)
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub_pem, "-rawin",
                        "-in", os.path.join(tmp, "digest.bin"), "-sigfile", os.path.join(tmp, "sig.bin")],
                       capture_output=True, text=True)
    return p.returncode == 0


def keypair(tmp, name):
    key, pub = os.path.join(tmp, name + ".pem"), os.path.join(tmp, name + ".pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    return key, pub


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def verify(d, *pubs):
    return lib.run(["report", "verify", d] + [a for p in pubs for a in ("--pubkey", p)])


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
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 0, f"sign: exit {rc} {log.strip()[:200]}")
    rev1 = os.path.join(d, "revisions", "1")
    rc, log = verify(d)
    ck(rc == 0 and "ok   revision 1" in log, "the signed report verifies")
    rc, log = verify(d, pub)
    ck(rc == 0, "... and with the signer's public key")
    rc, log = verify(d, pub2)
    ck(rc == 1 and "another key" in log, "the signer's signature is rejected for another expected key")

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

    # One byte changed: a digit of a number, and a space added.
    def tampered(edit, what):
        t = os.path.join(tmp, "t-" + what.replace(" ", "-"))
        shutil.copytree(d, t, symlinks=True)
        edit(t)
        rc, log = verify(t)
        ck(rc == 1 and "FAIL" in log, f"verify detects {what}: {[l for l in log.splitlines() if 'FAIL' in l][:2]}")
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
                         {"reason": "typo", "changes": [{"field": "/case_findings/invasive/largest_focus_mm", "value": 3}]})
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-kim", "--key", key2, "--amend", bad])
    ck(rc == 1 and "cannot be amended" in log and not os.path.exists(os.path.join(d, "revisions", "2")),
       "amending a measured number is refused")
    # A proper amendment: revision 2, amended, revision 1 untouched.
    amend = lib.write_json(os.path.join(tmp, "amend.json"), {
        "reason": "Category revised after deeper levels; ER/PgR approved",
        "changes": [{"field": "/diagnosis/category", "value": "in-situ-carcinoma"},
                    {"field": "/care_plan/suggestions/0/decision", "value": "approved"},
                    {"field": "/care_plan/suggestions/0/note", "value": "Ordered on block A2"}]})
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
        ck([c["field"] for c in so["amendments"]] == ["/diagnosis/category", "/care_plan/suggestions/0/decision",
                                                     "/care_plan/suggestions/0/note"] and
           so["amendments"][0]["before"] == "invasive-carcinoma" and so["amendments"][0]["after"] == "in-situ-carcinoma",
           "revision 2 records what changed, before and after")
        ck(r2["diagnosis"]["category"] == "in-situ-carcinoma" and r2["diagnosis"]["suggested_by"] == "pathologist" and
           r2["diagnosis"]["code"]["code"] == "86616005", "the category is the pathologist's, with its SNOMED CT code")
        ck(r2["care_plan"]["suggestions"][0]["decision"] == "approved", "the decision is recorded")
    rc, log = verify(d)
    ck(rc == 0 and "ok   revision 2" in log and "ok   revision 1" in log, "both revisions verify")
    rc, log = verify(d, pub, pub2)
    ck(rc == 0, "... with each signer's public key given")
    rc, log = verify(d, pub)
    ck(rc == 1 and "revision 2: signed with another key" in log, "... and not when only the first signer's key is given")
    events = [json.loads(l)["event"] for l in open(os.path.join(d, "audit.jsonl"))]
    ck(events[0] == "build" and "sign" in events and "amend" in events and "verify" in events,
       f"the audit log holds build, sign, amend and verify events: {events}")
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
