"""Shared by the sign-off tests (test_report_sign*.py, test_report_signers.py): an RFC 8785
canonical form written here independently of the C code, Ed25519 through the openssl command
line, key pairs, and a forger that re-signs a revision consistently with a given key.

Not a test itself (its name does not start with test_)."""
import base64
import hashlib
import json
import os
import shutil
import subprocess

import report_testlib as lib


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


def canon_bytes(o):
    return canon(o).encode()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def keypair(tmp, name):
    """An Ed25519 key pair made by openssl (private key mode 0600, as openssl writes it)."""
    key, pub = os.path.join(tmp, name + ".pem"), os.path.join(tmp, name + ".pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return key, pub


def openssl_verify(pub_pem, digest, sig, tmp):
    with open(os.path.join(tmp, "digest.bin"), "wb") as f:
        f.write(digest)
    with open(os.path.join(tmp, "sig.bin"), "wb") as f:
        f.write(sig)
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub_pem, "-rawin",
                        "-in", os.path.join(tmp, "digest.bin"), "-sigfile", os.path.join(tmp, "sig.bin")],
                       capture_output=True, text=True)
    return p.returncode == 0


def openssl_sign(key_pem, digest, tmp):
    """Ed25519 signature of `digest` (bytes) by openssl; returns its Base64."""
    with open(os.path.join(tmp, "digest.bin"), "wb") as f:
        f.write(digest)
    out = os.path.join(tmp, "sig.bin")
    subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key_pem, "-rawin", "-in",
                    os.path.join(tmp, "digest.bin"), "-out", out], check=True, capture_output=True)
    with open(out, "rb") as f:
        return base64.b64encode(f.read()).decode()


def raw_public_key(key_pem):
    der = subprocess.run(["openssl", "pkey", "-in", key_pem, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return der[-32:]


def resign(folder, rev, edit, key_pem, tmp):
    """Forges revision `rev` of `folder` consistently: applies edit(report) to its report.json and
    re-signs the report and the manifest with `key_pem` (as someone holding that key would), so
    only checks beyond the signatures can object."""
    d = os.path.join(folder, "revisions", str(rev))
    rep = lib.load(os.path.join(d, "report.json"))
    edit(rep)
    body = canon_bytes(rep)
    with open(os.path.join(d, "report.json"), "wb") as f:
        f.write(body)
    s = lib.load(os.path.join(d, "signature.json"))
    pub = raw_public_key(key_pem)
    fpr = hashlib.sha256(pub).hexdigest()
    digest = hashlib.sha256(body).digest()
    s["report_sha256"] = digest.hex()
    s["signature"] = openssl_sign(key_pem, digest, tmp)
    s["public_key"] = base64.b64encode(pub).decode()
    s["key_fingerprint"] = fpr
    m = s["manifest"]
    m["files"][f"revisions/{rev}/report.json"] = digest.hex()
    m["report_signature"] = s["signature"]
    m["key_fingerprint"] = fpr
    mdigest = hashlib.sha256(canon_bytes(m)).digest()
    s["manifest_sha256"] = mdigest.hex()
    s["manifest_signature"] = openssl_sign(key_pem, mdigest, tmp)
    with open(os.path.join(d, "signature.json"), "wb") as f:
        f.write(canon_bytes(s))


def copy(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def fails(log):
    return [line for line in log.splitlines() if line.startswith("FAIL")]


def verify(d, *keys, registry=None):
    """`report verify`; keys are (pathologist_id, pub.pem) pairs."""
    args = ["report", "verify", d]
    for pid, pub in keys:
        args += ["--pubkey", f"{pid}={pub}"]
    if registry:
        args += ["--registry", registry]
    return lib.run(args)
