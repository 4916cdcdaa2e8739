"""TLS (GnuTLS through libmicrohttpd) and the listening rules of `histoplan serve`:

- with a certificate the test makes (openssl, for 127.0.0.1), an HTTPS round trip verified
  against that certificate: health, an authenticated submission and its job;
- plain HTTP sent to the TLS port gets no HTTP answer;
- a client that does not trust the certificate fails the handshake;
- without TLS a non-loopback address is refused unless --insecure-listen; --tls-cert without
  --tls-key, and a key that is not a key, are refused at start with the option named.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
if not shutil.which("openssl"):
    T.skip("openssl is not installed")
check = T.Checks()
tmp = T.tempdir("tls")
data = os.path.join(tmp, "data")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
root = os.path.join(tmp, "slides")
os.makedirs(root)
slide = T.synth(os.path.join(root, "s.tiff"), 1000, 1000, 7)
sub = T.token(data, "submitter", "lis")
log = os.path.join(tmp, "serve.log")

srv = T.serve(data, log, ["--tls-cert", cert, "--tls-key", key, "--slide-root", root])
try:
    check(srv.url.startswith("https://127.0.0.1:"), f"listens with TLS: {srv.url}")
    ctx = ssl.create_default_context(cafile=cert)
    c = T.Client(srv.url, T.Contract(check), ssl_context=ctx)
    r = c("GET", "/v1/health")
    check(r.status == 200, "HTTPS health, the certificate verified")
    r = c("POST", "/v1/batches", sub["token"], {"slides": [{"path": slide}]}, {"Idempotency-Key": "tls"})
    check(r.status == 201, "HTTPS submission")
    b = T.wait_batch(c, sub["token"], r.json()["id"], 300)
    check(b["counts"]["succeeded"] == 1, "the job succeeded")
    r = c("GET", f"/v1/jobs/{b['jobs'][0]['id']}/findings.json", sub["token"])
    check(r.status == 200 and r.json()["slide"]["slide_id"], "findings over HTTPS")

    port = int(srv.url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    try:
        while len(got) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    check(not got.startswith(b"HTTP/"), f"plain HTTP on the TLS port gets no HTTP answer ({got[:16]!r})")

    strict = ssl.create_default_context()
    try:
        T.request(srv.url, "GET", "/v1/health", ssl_context=strict, timeout=10)
        check(False, "a client that does not trust the certificate is refused")
    except ssl.SSLError:
        check(True, "a client that does not trust the certificate fails the handshake")
finally:
    check(srv.terminate() == 0, "stopped cleanly")


def start_fails(args, want):
    p = subprocess.run([T.BIN, "serve", "--data", data, "--model", T.MODEL] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    return p.returncode != 0 and want in p.stderr, p.stderr.strip()[-200:]


ok, msg = start_fails(["--listen", "0.0.0.0:0"], "--insecure-listen")
check(ok, f"a non-loopback address without TLS is refused, naming --tls-cert and --insecure-listen ({msg})")
ok, msg = start_fails(["--listen", "127.0.0.1:0", "--tls-cert", cert], "--tls-key")
check(ok, f"--tls-cert without --tls-key is refused ({msg})")
ok, msg = start_fails(["--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", cert], "TLS")
check(ok, f"a certificate given as the key is refused at start ({msg})")
ok, msg = start_fails(["--listen", "127.0.0.1:0", "--tls-cert", os.path.join(tmp, "none.pem"),
                       "--tls-key", key], "--tls-cert")
check(ok, f"a missing certificate file is named ({msg})")
# Usage errors (exit 2) and start failures (exit 1) of the two commands.
for args, code, want in [
    (["serve"], 2, "--data"),
    (["serve", "--data", data, "--bogus"], 2, "unknown option --bogus"),
    (["serve", "--data", data, "--workers", "-1"], 2, "--workers"),
    (["serve", "--data", data, "--db", "mysql://x"], 1, "--db takes sqlite or a postgresql"),
    (["serve", "--data", data, "--slide-root", os.path.join(tmp, "nope")], 1, "--slide-root"),
    (["serve", "token", "create", "--data", data, "--role", "king", "--name", "x"], 2, "--role"),
    (["serve", "token", "revoke", "--data", data, "t_" + "a" * 26], 1, "no active token"),
    (["worker", "--data", data], 2, "--db postgresql"),
    (["worker", "--data", data, "--db", "sqlite"], 1, "PostgreSQL"),
]:
    pr = subprocess.run([T.BIN] + args + (["--model", T.MODEL] if args[0] == "worker" else []),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    check(pr.returncode == code and want in pr.stderr,
          f"histoplan {' '.join(args[:3])}...: exit {pr.returncode} (want {code}), names {want!r}")
p = T.Proc(["serve", "--data", data, "--model", T.MODEL, "--listen", "0.0.0.0:0", "--insecure-listen",
            "--workers", "0"], log, r"listening on (\S+)")
check(p.url.startswith("http://0.0.0.0:"), f"--insecure-listen serves plain HTTP on all addresses ({p.url})")
r = T.request("http://127.0.0.1:" + p.url.rsplit(":", 1)[1], "GET", "/v1/health")
check(r.status == 200, "...and answers")
p.terminate()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
