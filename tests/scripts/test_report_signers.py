"""Who signed: the signer registry (`histoplan report signers add|list|revoke`), pathologist ids
bound to keys in `report verify` and `report sign`, and private key permissions.

- `signers add` binds a public key (by the SHA-256 of its raw bytes, recomputed here) to a
  pathologist id in $HP_CONFIG_DIR/signers.json, which validates against
  schemas/signers.schema.json; a key is bound to one id only; private keys and bad ids are refused.
- With the registry present, verify says whose key signed (exit 0); a key signing under another
  pathologist's id fails, as does a key the registry does not hold and a revoked key; sign refuses
  all three before writing anything. Without registry or --pubkey verify exits 4 with "signature
  valid, signer NOT verified". A registry anyone can write to is refused.
- A private key that its group or everyone can access (0666, 0644, 0640) is refused by sign with
  the mode and `chmod 600` named, and nothing is written; 0600 and 0400 are accepted."""
import hashlib
import json
import os
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import sign_testlib as sl  # noqa: E402

try:
    import jsonschema
except ImportError:
    jsonschema = None

ck = lib.Checks()

with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "lab-config")
    empty = os.path.join(tmp, "no-config")
    os.environ["HP_CONFIG_DIR"] = cfg
    registry = os.path.join(cfg, "signers.json")
    findings = lib.synthetic_findings(tmp)
    case = lib.case_file(tmp)
    okafor, okafor_pub = sl.keypair(tmp, "okafor")
    kim, kim_pub = sl.keypair(tmp, "kim")
    stranger, stranger_pub = sl.keypair(tmp, "stranger")
    fpr = {k: hashlib.sha256(sl.raw_public_key(k)).hexdigest() for k in (okafor, kim, stranger)}

    def signers(*args, env=None):
        return lib.run(["report", "signers"] + list(args), env=env)

    def draft(name):
        d = os.path.join(tmp, name)
        rc, log = lib.build(case, [findings], d)
        ck(rc == 0, f"build {name}: {log.strip()[:120]}")
        return d

    def sign(d, who, key, env_dir=None, extra=()):
        env = dict(os.environ, HP_CONFIG_DIR=env_dir) if env_dir else None
        return lib.run(["report", "sign", d, "--pathologist", who, "--key", key] + list(extra), env=env)

    # The registry.
    rc, log = signers("add", "--pathologist", "dr-okafor", "--pubkey", okafor_pub)
    ck(rc == 0 and fpr[okafor] in log, f"signers add dr-okafor: {log.strip()[:160]}")
    rc, log = signers("add", "--pathologist", "dr-kim", "--pubkey", kim_pub)
    ck(rc == 0, "signers add dr-kim")
    reg = lib.load(registry) if os.path.exists(registry) else {}
    ck(reg.get("format") == "histoplan-signers/1" and
       [(s["pathologist_id"], s["key_fingerprint"], s["revoked_at"]) for s in reg.get("signers", [])] ==
       [("dr-okafor", fpr[okafor], None), ("dr-kim", fpr[kim], None)],
       "the registry binds each id to the SHA-256 of its raw public key (recomputed here)")
    if jsonschema:
        schema = lib.load(os.path.join(lib.SRC, "schemas", "signers.schema.json"))
        errs = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(reg)]
        ck(not errs, f"signers.json validates against its schema {errs[:2]}")
    ck(not (os.stat(registry).st_mode & stat.S_IWOTH), "the registry is not writable by others")
    rc, log = signers("list")
    ck(rc == 0 and "dr-okafor" in log and fpr[kim] in log, "signers list shows both keys")
    before = open(registry, "rb").read()
    rc, log = signers("add", "--pathologist", "dr-kim", "--pubkey", okafor_pub)
    ck(rc == 1 and "already registered to dr-okafor" in log, f"a key is bound to one id only: {log.strip()[:160]}")
    rc, log = signers("add", "--pathologist", "dr-lee", "--pubkey", okafor)
    ck(rc == 1 and "not a public key" in log, "a private key is not registered")
    rc, log = signers("add", "--pathologist", "dr=lee", "--pubkey", stranger_pub)
    ck(rc == 2, "an id with '=' is refused")
    ck(open(registry, "rb").read() == before, "refused additions leave the registry as it was")

    # Verify with the registry: ids bound to keys.
    d = draft("report")
    rc, log = sign(d, "dr-okafor", okafor)
    ck(rc == 0, f"dr-okafor signs with their key: {log.strip()[:160]}")
    rc, log = sl.verify(d)
    ck(rc == 0 and "signer verified by the signer registry" in log, f"verify with the default registry: exit {rc}")
    rc, log = lib.run(["report", "verify", d, "--registry", registry], env=dict(os.environ, HP_CONFIG_DIR=empty))
    ck(rc == 0, f"... and with --registry FILE: exit {rc}")
    rc, log = lib.run(["report", "verify", d], env=dict(os.environ, HP_CONFIG_DIR=empty))
    ck(rc == 4 and "signature valid, signer NOT verified" in log,
       f"without registry or --pubkey: exit 4, 'signature valid, signer NOT verified' (got {rc})")

    # Signing under another pathologist's id.
    d2 = draft("impostor")
    rc, log = sign(d2, "dr-kim", okafor)
    ck(rc == 1 and "belongs to dr-okafor" in log and not os.path.exists(os.path.join(d2, "revisions")),
       f"sign refuses dr-okafor's key under dr-kim's id when a registry is present: {log.strip()[:160]}")
    rc, log = sign(d2, "dr-kim", okafor, env_dir=empty)
    ck(rc == 0, "... (signed where no registry is configured)")
    rc, log = sl.verify(d2)
    ck(rc == 1 and "binds to dr-okafor" in log, f"verify with the registry fails it: {sl.fails(log)[:1]}")
    rc, log = sl.verify(d2, ("dr-kim", kim_pub))
    ck(rc == 1, "... also when dr-kim's own key is given")

    # A key nobody registered.
    d3 = draft("stranger")
    rc, log = sign(d3, "dr-lee", stranger)
    ck(rc == 1 and "not in the signer registry" in log and "signers add" in log,
       f"sign refuses a key the registry does not hold: {log.strip()[:160]}")
    rc, log = sign(d3, "dr-lee", stranger, env_dir=empty)
    rc, log = sl.verify(d3)
    ck(rc == 1 and "not in the signer registry" in log, f"verify fails a key the registry does not hold: {sl.fails(log)[:1]}")
    rc, log = sl.verify(d3, ("dr-lee", stranger_pub))
    ck(rc == 0, "... and passes when that key is given for that id with --pubkey")

    # Revocation.
    d4 = draft("kim")
    rc, log = sign(d4, "dr-kim", kim)
    ck(rc == 0, "dr-kim signs")
    rc, log = signers("revoke", "--pathologist", "dr-kim", "--pubkey", kim_pub, "--reason", "laptop lost")
    ck(rc == 0, f"signers revoke: {log.strip()[:160]}")
    rc, log = sl.verify(d4)
    ck(rc == 1 and "revoked" in log and "laptop lost" in log, f"a revoked key fails verification: {sl.fails(log)[:1]}")
    rc, log = sl.verify(d4, ("dr-kim", kim_pub))
    ck(rc == 1 and "revoked" in log, "... even when given with --pubkey")
    rc, log = sign(draft("kim-again"), "dr-kim", kim)
    ck(rc == 1 and "revoked" in log, "sign refuses a revoked key")
    rc, log = signers("add", "--pathologist", "dr-kim", "--pubkey", kim_pub)
    ck(rc == 1 and "revoked" in log, "a revoked key cannot be registered again")
    rc, log = signers("revoke", "--pathologist", "dr-okafor", "--fingerprint", fpr[kim])
    ck(rc == 1, "a key is revoked only under its own id")
    rc, log = sl.verify(d)
    ck(rc == 0, "dr-okafor's report still verifies")

    # A registry anyone can write to.
    os.chmod(registry, 0o666)
    rc, log = sl.verify(d)
    ck(rc == 1 and "0666" in log and "signers.json" in log, f"a world-writable registry is refused: {log.strip()[-160:]}")
    os.chmod(registry, 0o644)
    rec = json.loads(open(registry).read())
    rec["signers"][0]["key_fingerprint"] = fpr[stranger]
    bad = lib.write_json(os.path.join(tmp, "bad-signers.json"), rec)
    rc, log = lib.run(["report", "verify", d, "--registry", bad])
    ck(rc == 1 and "bad-signers.json" in log and "key_fingerprint" in log,
       f"a registry whose fingerprint is not its key's is refused: {log.strip()[-160:]}")

    # Private key permissions.
    for mode in (0o666, 0o644, 0o640):
        d5 = draft(f"mode-{mode:o}")
        os.chmod(okafor, mode)
        rc, log = sign(d5, "dr-okafor", okafor)
        ck(rc == 1 and f"{mode:04o}" in log and "chmod 600" in log and not os.path.exists(os.path.join(d5, "revisions")),
           f"a private key of mode {mode:04o} is refused, naming the mode and chmod 600: {log.strip()[:170]}")
    for mode in (0o600, 0o400):
        d5 = draft(f"mode-ok-{mode:o}")
        os.chmod(okafor, mode)
        rc, log = sign(d5, "dr-okafor", okafor)
        ck(rc == 0, f"a private key of mode {mode:04o} signs")
ck.exit()
