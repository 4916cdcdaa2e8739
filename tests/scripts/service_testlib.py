"""Shared by the service tests (test_serve_*.py): starting and stopping `histoplan serve` and
`histoplan worker`, tokens, an HTTP client, every response checked against
schemas/api.openapi.yaml, a callback receiver that checks Standard Webhooks signatures with
Python's hmac, and a private PostgreSQL cluster (initdb + pg_ctl in a temporary folder, Unix
socket, as a non-root user).

Not a test itself (its name does not start with test_)."""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(SRC, "..", "shared"))
MODEL = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")
CMU = os.path.join(SHARED, "data", "real", "slides", "CMU-1-Small-Region.svs")
OPENAPI = os.path.join(SRC, "schemas", "api.openapi.yaml")


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


def require_service():
    """Skips (77) when this build has no service or Python lacks what the tests need."""
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as e:
        skip(f"python3-jsonschema or python3-yaml missing ({e})")
    p = subprocess.run([BIN, "serve", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        skip("this histoplan was built without the lab batch service")


class Checks:
    """Counts checks; every check prints ok/FAIL so a failure says what broke."""

    def __init__(self):
        self.failures = 0
        self.count = 0

    def __call__(self, cond, msg):
        self.count += 1
        print(("ok   " if cond else "FAIL ") + msg, flush=True)
        if not cond:
            self.failures += 1
        return cond

    def exit(self):
        print(f"{self.count - self.failures} passed, {self.failures} failed")
        sys.exit(1 if self.failures else 0)


def run(args, **kw):
    p = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    return p.returncode, p.stdout, p.stderr


def synth(path, w, h, seed):
    rc, out, err = run(["synth", "--out", path, "--size", f"{w}x{h}", "--seed", str(seed)])
    if rc != 0:
        raise RuntimeError(f"synth failed: {err}")
    return path


def token(data, role, name, db=None):
    args = ["serve", "token", "create", "--data", data, "--role", role, "--name", name, "--json"]
    if db:
        args += ["--db", db]
    rc, out, err = run(args)
    if rc != 0:
        raise RuntimeError(f"token create failed: {err}")
    return json.loads(out)


# ---- processes ------------------------------------------------------------------------------


class Proc:
    """`histoplan serve` or `histoplan worker` in the background; stderr goes to a log file."""

    def __init__(self, args, log_path, ready_pattern, timeout=60, env=None):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.url = None
        deadline = time.time() + timeout
        line = b""
        # The first line on stdout says the process is ready (and where it listens).
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if line or self.p.poll() is not None:
                break
        text = line.decode(errors="replace").strip()
        m = re.search(ready_pattern, text)
        if not m:
            self.p.kill()
            self.p.wait()
            raise RuntimeError(f"{args[0]} did not start: {text!r}; log:\n{self.tail()}")
        self.url = m.group(1) if m.groups() else None

    def tail(self, n=30):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")

    def alive(self):
        return self.p.poll() is None

    def terminate(self, timeout=90):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def kill9(self):
        if self.alive():
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self.log.close()


def serve(data, log, extra=(), db=None, timeout=60):
    args = ["serve", "--data", data, "--listen", "127.0.0.1:0", "--model", MODEL] + list(extra)
    if db:
        args += ["--db", db]
    return Proc(args, log, r"listening on (\S+)", timeout)


def worker(data, db, log, extra=()):
    args = ["worker", "--data", data, "--db", db, "--model", MODEL] + list(extra)
    return Proc(args, log, r"(ready)")


# ---- HTTP -----------------------------------------------------------------------------------


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def ctype(self):
        return self.headers.get("content-type", "")


def request(url, method, path, tok=None, body=None, headers=None, timeout=60, ssl_context=None):
    """One request on a fresh connection. `body`: dict/list (sent as JSON), bytes, or None."""
    u = re.match(r"(https?)://([^:/]+|\[[^\]]+\]):(\d+)", url)
    host, port = u.group(2).strip("[]"), int(u.group(3))
    if u.group(1) == "https":
        c = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context)
    else:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
    h = dict(headers or {})
    if tok:
        h["Authorization"] = f"Bearer {tok}"
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body
    try:
        c.request(method, path, body=data, headers=h)
    except (BrokenPipeError, ConnectionResetError):
        # The server answered before reading the whole body (a refusal from the headers alone)
        # and closed; its answer is still in the socket.
        pass
    r = c.getresponse()
    resp = Response(r.status, r.getheaders(), r.read())
    c.close()
    return resp


# ---- the OpenAPI contract -------------------------------------------------------------------


class Contract:
    """Checks responses against schemas/api.openapi.yaml: the status must be documented for the
    operation, problem responses must be application/problem+json, and JSON bodies must validate
    against the documented schema. Counts what it saw per (operation, status)."""

    def __init__(self, check):
        import jsonschema
        import yaml

        with open(OPENAPI) as f:
            self.doc = yaml.safe_load(f)
        self.check = check
        self.seen = set()
        self.jsonschema = jsonschema
        # $refs resolve inside the document; "case.schema.json" beside it.
        store = {}
        with open(os.path.join(SRC, "schemas", "case.schema.json")) as f:
            store["case.schema.json"] = json.load(f)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc, store=store)
        self.ops = []
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            for method, op in item.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    self.ops.append((re.compile(rx), template, method.upper(), op))

    def operation(self, method, path):
        path = path.split("?")[0]
        # Literal templates win over parameter ones (/v1/jobs/{id}/cancel over .../{file}).
        best = None
        for rx, template, m, op in self.ops:
            if m == method and rx.match(path):
                lit = template.count("{")
                if best is None or lit < best[0]:
                    best = (lit, template, op)
        return (best[1], best[2]) if best else (None, None)

    def schema_for(self, op, status):
        resp = op["responses"].get(str(status))
        if resp is None:
            return None, False
        while "$ref" in resp:
            resp = self.resolver.resolve(resp["$ref"])[1]
        content = resp.get("content") or {}
        for ctype, media in content.items():
            if "schema" in media and ctype in ("application/json", "application/problem+json"):
                return media["schema"], True
        return None, True

    def __call__(self, method, path, r, label=""):
        template, op = self.operation(method, path)
        what = f"{method} {template or path} -> {r.status} {label}".strip()
        if not self.check(op is not None, f"contract: {method} {path} is an operation of the API"):
            return False
        schema, documented = self.schema_for(op, r.status)
        ok = self.check(documented, f"contract: {what}: status documented")
        self.seen.add((method, template, r.status))
        if r.status >= 400 and method != "HEAD":
            ok &= self.check(r.ctype.startswith("application/problem+json"),
                             f"contract: {what}: problem+json ({r.ctype})")
        if schema is not None and r.body:
            try:
                body = json.loads(r.body)
                self.jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(body)
                ok &= self.check(True, f"contract: {what}: body matches the schema")
            except Exception as e:  # noqa: BLE001 - report any validation or JSON failure
                ok &= self.check(False, f"contract: {what}: body does not match: {str(e)[:300]}")
        return ok

    def validate(self, schema_name, value):
        schema = {"$ref": f"#/components/schemas/{schema_name}"}
        self.jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(value)


class Client:
    """request() bound to a server, every response checked by the contract."""

    def __init__(self, url, contract, ssl_context=None):
        self.url = url
        self.contract = contract
        self.ssl_context = ssl_context

    def __call__(self, method, path, tok=None, body=None, headers=None, label="", timeout=60):
        r = request(self.url, method, path, tok, body, headers, timeout, self.ssl_context)
        if self.contract:
            self.contract(method, path, r, label)
        return r


def wait_batch(client, tok, batch_id, timeout=600, states=("done",)):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = client("GET", f"/v1/batches/{batch_id}", tok)
        if r.status == 200 and r.json()["state"] in states:
            return r.json()
        time.sleep(0.5)
    raise RuntimeError(f"batch {batch_id} not done after {timeout} s")


# ---- callbacks ------------------------------------------------------------------------------


def verify_signature(secret, msg_id, timestamp, body, signature_header):
    """Standard Webhooks, checked independently of histoplan: HMAC-SHA256 over
    "id.timestamp.body" with the base64-decoded secret."""
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body,
                                         hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in signature_header.split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in sigs)


class Receiver:
    """A local HTTP server that records callbacks. `fail_first` answers 503 to that many
    requests first; `accept` can be switched off (answers 503) and on."""

    def __init__(self, fail_first=0):
        self.calls = []
        self.lock = threading.Lock()
        self.fail_left = fail_first
        self.accept = True
        recv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with recv.lock:
                    ok = recv.accept and recv.fail_left <= 0
                    if recv.fail_left > 0:
                        recv.fail_left -= 1
                    recv.calls.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body, "accepted": ok, "path": self.path})
                self.send_response(204 if ok else 503)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self):
        with self.lock:
            return [c for c in self.calls if c["accepted"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- PostgreSQL -----------------------------------------------------------------------------


def pg_bindir():
    for d in sorted(glob_dirs("/usr/lib/postgresql"), reverse=True):
        if os.path.exists(os.path.join(d, "bin", "initdb")):
            return os.path.join(d, "bin")
    return None


def glob_dirs(root):
    try:
        return [os.path.join(root, n) for n in os.listdir(root)]
    except OSError:
        return []


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: initdb and pg_ctl in a temporary folder, listening only on
    a Unix socket in that folder. PostgreSQL refuses to run as root, so when the tests run as root
    the cluster runs as the unprivileged user `nobody` (runuser), which owns the folder."""

    def __init__(self, tmp):
        self.bindir = pg_bindir()
        if not self.bindir:
            skip("PostgreSQL server binaries (postgresql-15) are not installed")
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.prefix = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                skip("running as root without runuser to start PostgreSQL as another user")
            self.prefix = ["runuser", "-u", "nobody", "--"]
            shutil.chown(self.dir, "nobody")
            os.chmod(tmp, 0o755)
        self._run(["initdb", "-D", self.data, "-U", "hp", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        opts = f"-k {self.sock} -c listen_addresses='' -c max_connections=200 -c fsync=off"
        self._run(["pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.dir, "log"),
                   "-w", "-t", "60", "start"])
        self.url = f"postgresql:///postgres?host={self.sock}&user=hp"

    def _run(self, args):
        p = subprocess.run(self.prefix + [os.path.join(self.bindir, args[0])] + args[1:],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.dir)
        if p.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {p.stdout}")
        return p.stdout

    def psql(self, sql):
        p = subprocess.run([os.path.join(self.bindir, "psql"), "-h", self.sock, "-U", "hp", "-d",
                            "postgres", "-At", "-c", sql], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"psql failed: {p.stdout}")
        return p.stdout

    def stop(self):
        try:
            self._run(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        except RuntimeError as e:
            print(f"note: {e}")


def require_browser():
    """The tests/js folder and Debian's chromium for playwright-core; skips when either is missing."""
    js = os.path.join(SRC, "tests", "js")
    if not os.path.isdir(os.path.join(js, "node_modules", "playwright-core")):
        skip("playwright-core is not installed (cd tests/js && npm ci)")
    chromium = os.environ.get("HP_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium) or not shutil.which("node"):
        skip("chromium or node is missing (scripts/install-deps.sh installs them)")
    return js, chromium


def screenshots_dir(out):
    """Where the viewer tests write the screenshots the docs show: docs/ when HP_UPDATE_DOCS=1
    (a change to the viewer, then look at them and commit), else the test's own folder, so that
    a test run never changes the committed files."""
    return os.path.join(SRC, "docs") if os.environ.get("HP_UPDATE_DOCS") == "1" else out


def tempdir(name):
    return tempfile.mkdtemp(prefix=f"hp-{name}-")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
