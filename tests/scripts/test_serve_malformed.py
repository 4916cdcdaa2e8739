"""Malformed and hostile requests to `histoplan serve`, sent over raw sockets where an HTTP library
would refuse to send them: bad JSON of many kinds, invalid UTF-8 (body, path, header), huge
bodies (declared and chunked), too many and too long headers, garbage request lines, path
traversal in every id and file parameter, slow clients (slowloris headers, a stalled body)
while others are served, and half-sent uploads. After each, the server must still answer
(health 200), with the right status, and leave nothing behind (no temporary uploads, no file
outside the data folder).
"""
import json
import os
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
check = T.Checks()
tmp = T.tempdir("malformed")
data = os.path.join(tmp, "data")
root = os.path.join(tmp, "slides")
os.makedirs(root)
sub = T.token(data, "submitter", "lis")
S = sub["token"]
log = os.path.join(tmp, "serve.log")
srv = T.serve(data, log, ["--workers", "0", "--slide-root", root, "--max-body", "65536",
                          "--max-upload", "1000000", "--client-timeout", "3", "--rate-limit", "0"])
host, port = "127.0.0.1", int(srv.url.rsplit(":", 1)[1])


def raw(data_bytes, read_timeout=10, pause=None):
    """Sends bytes (a list of pieces with pauses between, when `pause`), returns what came back."""
    s = socket.create_connection((host, port), timeout=read_timeout)
    try:
        pieces = data_bytes if isinstance(data_bytes, list) else [data_bytes]
        for i, p in enumerate(pieces):
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause and i + 1 < len(pieces):
                time.sleep(pause)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                head, _, rest = got.partition(b"\r\n\r\n")
                cl = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
        return got
    finally:
        s.close()


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def post_json(body_bytes, extra=b"", path=b"/v1/batches"):
    return raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() +
               b"\r\nIdempotency-Key: m\r\nContent-Type: application/json\r\nContent-Length: " +
               str(len(body_bytes)).encode() + b"\r\nConnection: close\r\n" + extra + b"\r\n" + body_bytes)


def healthy(what):
    r = T.request(srv.url, "GET", "/v1/health", timeout=10)
    check(r.status == 200 and srv.alive(), f"still healthy after {what}")


try:
    # -- bad JSON --------------------------------------------------------------------------------
    cases = {
        "empty object": (b"{}", 422),
        "array": (b"[]", 422),
        "a bare string": (b"\"slides\"", 422),
        "trailing comma": (b"{\"slides\": [1,],}", 400),
        "single quotes": (b"{'slides': []}", 400),
        "NUL inside a string": (b"{\"slides\": \"a\x00b\"}", 400),
        "raw newline inside a string": (b"{\"slides\": \"a\nb\"}", 422),
        "unterminated string": (b"{\"slides\": \"abc", 400),
        "overlong UTF-8": (b"{\"slides\": \"\xc0\xaf\"}", 400),
        "UTF-8 surrogate": (b"{\"slides\": \"\xed\xa0\x80\"}", 400),
        "truncated UTF-8": (b"{\"slides\": \"\xe2\x82\"}", 400),
        "nesting 33 deep": (b"[" * 33 + b"]" * 33, 400),
        "nesting 10000 deep": (b"{\"a\":" * 10000 + b"1" + b"}" * 10000, 400),
        "duplicate keys": (b"{\"slides\": [], \"slides\": []}", 400),
        "a huge number": (b"{\"slides\": [{\"path\": \"/x\", \"mpp\": 1e999}]}", 422),
        "slides of nulls": (b"{\"slides\": [null, null]}", 422),
        "two values": (b"{} {}", 400),
        "whitespace only": (b"   ", 400),
    }
    for what, (body, want) in cases.items():
        r = post_json(body)
        got = status_of(r)
        ok = got == want or (want == 422 and got == 400 and what == "raw newline inside a string")
        check(ok and b"application/problem+json" in r, f"{what}: {got} (want {want})")
    healthy("bad JSON")

    # -- huge bodies -------------------------------------------------------------------------------
    r = raw(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() +
            b"\r\nIdempotency-Key: h\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{")
    check(status_of(r) == 413, f"Content-Length of 10 GB: 413 before any body is read ({status_of(r)})")
    chunk = b"x" * 65536
    chunked = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(40)) + b"0\r\n\r\n"
    r = raw(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() +
            b"\r\nIdempotency-Key: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    check(status_of(r) in (413, 0), f"2.5 MB chunked body over --max-body: 413 or the connection closed ({status_of(r)})")
    sha = "ab" * 32
    r = raw(b"PUT /v1/uploads/" + sha.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            S.encode() + b"\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
            chunked)
    check(status_of(r) in (413, 0), f"chunked upload over --max-upload: 413 or closed ({status_of(r)})")
    huge = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(400)) + b"0\r\n\r\n"
    r = raw(b"PUT /v1/uploads/" + sha.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            S.encode() + b"\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + huge)
    check(status_of(r) in (413, 0), f"26 MB chunked upload: refused, the connection cut ({status_of(r)})")
    healthy("huge bodies")
    check(not [n for n in os.listdir(os.path.join(data, "uploads")) if n.startswith(".incoming")],
          "no temporary upload is left")

    # -- headers and request lines ---------------------------------------------------------------
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(100))
    r = raw(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() + b"\r\n" + many + b"\r\n")
    check(status_of(r) == 413 and b"problem+json" in r, f"100 header lines: 413 ({status_of(r)})")
    r = raw(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    check(status_of(r) in (413, 431, 0), f"a 200 KB header: refused by the HTTP layer ({status_of(r)})")
    for line in (b"BLAH\r\n\r\n", b"GET\r\n\r\n", b"GET /v1/health HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\r\n\r\n",
                 b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"):
        r = raw(line)
        check(status_of(r) in (0, 400, 505) or r == b"", f"garbage request {line[:20]!r}: {status_of(r)}")
    healthy("garbage requests")
    r = raw(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hp_\xff\xfe\xfd\r\n\r\n")
    check(status_of(r) == 401, f"invalid UTF-8 in the token: 401 ({status_of(r)})")
    r = raw(b"GET /v1/jobs/j_\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() + b"\r\n\r\n")
    check(status_of(r) in (400, 404), f"invalid UTF-8 in the path: {status_of(r)}")

    # -- path traversal in ids -------------------------------------------------------------------
    secret = os.path.join(tmp, "secret.txt")
    with open(secret, "w") as f:
        f.write("do not serve")
    paths = [
        "/v1/jobs/../../../etc/passwd",
        "/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/jobs/%2e%2e/findings.json",
        "/v1/jobs/j_aaaaaaaaaaaaaaaaaaaaaaaaaa/..%2F..%2F..%2Fsecret.txt",
        "/v1/jobs/..%2Fresults/findings.json",
        "/v1/batches/..%2Fhistoplan.db",
        "/v1/batches/b_%00aaaaaaaaaaaaaaaaaaaaaaaaa",
        "/v1/cases/..%2F..%2Fsecret.txt/report.json",
        "/v1/cases/%2e%2e/report.json",
        "/v1/jobs//findings.json",
    ]
    for p in paths:
        r = raw(b"GET " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() + b"\r\n\r\n")
        check(status_of(r) in (400, 403, 404) and b"do not serve" not in r and b"root:" not in r,
              f"traversal {p}: {status_of(r)}")
    r = raw(b"PUT /v1/uploads/..%2F..%2Fsecret.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + S.encode() +
            b"\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc")
    check(status_of(r) in (400, 404), f"traversal in an upload name: {status_of(r)}")
    check(open(secret).read() == "do not serve", "the file outside the data folder is untouched")
    for bad in [root + "/../secret.txt", root + "/./x.svs", root + "//x.svs", root + "/x\x01.svs",
                root + "x/y.svs", "relative/x.svs", ""]:
        r = post_json(json.dumps({"slides": [{"path": bad}]}).encode())
        check(status_of(r) == 422 and b"/slides/0/path" in r, f"slide path {bad!r}: 422 naming the field")
    healthy("traversal attempts")

    # -- slow clients ------------------------------------------------------------------------------
    slow = []
    for _ in range(40):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
        slow.append(s)
    t0 = time.time()
    times = []
    for _ in range(10):
        t = time.time()
        r = T.request(srv.url, "GET", "/v1/jobs", S, timeout=10)
        times.append(time.time() - t)
    check(r.status == 200 and max(times) < 1.0,
          f"40 slowloris connections open: others are served (slowest {max(times) * 1000:.0f} ms)")
    time.sleep(4.5)
    closed = 0
    for s in slow:
        try:
            s.settimeout(2)
            closed += s.recv(1) == b""
        except (socket.timeout, ConnectionResetError, OSError):
            closed += 1
        s.close()
    check(closed == 40, f"idle slow clients are dropped after --client-timeout 3 ({closed}/40)")
    # A body that stalls half way.
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(b"PUT /v1/uploads/" + sha.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              S.encode() + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" +
              b"y" * 5000)
    t = time.time()
    try:
        gone = s.recv(1) == b""
    except (socket.timeout, ConnectionResetError, OSError):
        gone = True
    s.close()
    check(gone and time.time() - t < 15, f"a stalled upload is dropped ({time.time() - t:.1f} s)")
    time.sleep(0.5)
    check(not [n for n in os.listdir(os.path.join(data, "uploads")) if n.startswith(".incoming")],
          "the stalled upload's temporary file is removed")
    # Many connections at once, each a complete request.
    results = []

    def hit():
        try:
            results.append(T.request(srv.url, "GET", "/v1/health", timeout=20).status)
        except Exception as e:  # noqa: BLE001
            results.append(str(e))
    ts = [threading.Thread(target=hit) for _ in range(100)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    check(results.count(200) == 100, f"100 concurrent connections all answered ({results.count(200)})")
    healthy("slow clients")
finally:
    rc = srv.terminate()
check(rc == 0, "stopped cleanly")
with open(log, "rb") as f:
    check(b"do not serve" not in f.read(), "nothing of the probed files reached the log")
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
