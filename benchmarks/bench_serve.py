"""The lab batch service side by side with its peers, in one run on one machine:

1. Throughput: `histoplan analyze` on N generated slides (one process, one after another) against
   `histoplan serve` analyzing the same N slides as one batch (1 worker, the same reader threads
   and batch size), from the POST to the batch being done. Overhead = service time / analyze
   time - 1 (target under 5%). Each side runs --rounds times, alternating, best of each kept.
2. API under load with wrk (Debian's wrk 4.1): GET /v1/jobs/{id} and POST /v1/batches (a Lua
   script gives each request its own Idempotency-Key), each for --seconds, first on an idle
   server, then while the server analyzes a batch on the same machine. Requests/s, p50 and p99
   latency and errors (non-2xx, socket errors); target p99 under 50 ms for status calls, 0 errors.

Usage:
  /usr/bin/python3 benchmarks/bench_serve.py [--slides 20] [--size 3000] [--rounds 1]
      [--seconds 15] [--connections 8] [--json out/bench/serve.json]
Run scripts/build.sh first: a stale build/histoplan measures old code.
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "scripts"))
os.environ.setdefault("HP_BIN", os.path.join(SRC, "build", "histoplan"))
os.environ.setdefault("HP_SOURCE_DIR", SRC)
import service_testlib as T  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--slides", type=int, default=20)
ap.add_argument("--size", type=int, default=3000)
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--seconds", type=int, default=15)
ap.add_argument("--connections", type=int, default=8)
ap.add_argument("--threads", type=int, default=0, help="tile reader threads (0: every CPU)")
ap.add_argument("--json", default="")
args = ap.parse_args()
if not shutil.which("wrk"):
    sys.exit("wrk is not installed (scripts/install-deps.sh installs it)")

tmp = tempfile.mkdtemp(prefix="hp-bench-serve-")
root = os.path.join(tmp, "slides")
os.makedirs(root)
slides = [T.synth(os.path.join(root, f"s{i:02d}.tiff"), args.size, args.size, 7000 + i)
          for i in range(args.slides)]
common = ["--model", T.MODEL, "--batch", "16"] + (["--threads", str(args.threads)] if args.threads else [])
out = {"slides": args.slides, "size": args.size, "machine": os.uname().nodename, "cpus": os.cpu_count()}


def child_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_analyze():
    dest = os.path.join(tmp, "analyze-out")
    shutil.rmtree(dest, ignore_errors=True)
    c0, t = child_cpu(), time.time()
    p = subprocess.run([T.BIN, "analyze"] + slides + common + ["--out", dest],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"analyze failed: {p.stderr[-500:]}")
    return time.time() - t, child_cpu() - c0


def start_server(data, extra=()):
    return T.serve(data, os.path.join(tmp, "serve.log"),
                   ["--slide-root", root, "--workers", "1", "--rate-limit", "0", "--stop-grace-seconds", "0",
                    "--http-threads", "4"] + common[2:] + list(extra))


def run_service(rnd):
    data = os.path.join(tmp, f"data-{rnd}")
    sub = T.token(data, "submitter", "bench")
    # The batch's own callback says when it is done: polling the API would add its own load to
    # the server being measured.
    recv = T.Receiver()
    # CPU time of the whole server process (start, model load, the batch, stop), against the
    # whole analyze process.
    c0 = child_cpu()
    srv = start_server(data)
    try:
        t = time.time()
        r = T.request(srv.url, "POST", "/v1/batches", sub["token"],
                      {"slides": [{"path": p} for p in slides], "callback_url": recv.url},
                      {"Idempotency-Key": f"b{rnd}"})
        assert r.status == 201, r.body
        bid = r.json()["id"]
        while not any(json.loads(x["body"])["type"] == "batch.completed" for x in recv.accepted()):
            time.sleep(0.01)
        dt = time.time() - t
        b = T.request(srv.url, "GET", f"/v1/batches/{bid}", sub["token"]).json()
        assert b["counts"]["succeeded"] == args.slides, b["counts"]
    finally:
        srv.terminate()
        recv.stop()
    return dt, child_cpu() - c0


# ---- 1. throughput ----------------------------------------------------------------------------
a_times, s_times, a_cpu, s_cpu = [], [], [], []
for rnd in range(args.rounds):
    w, c = run_analyze()
    a_times.append(w), a_cpu.append(c)
    w, c = run_service(rnd)
    s_times.append(w), s_cpu.append(c)
    print(f"round {rnd + 1}: analyze {a_times[-1]:.1f} s wall {a_cpu[-1]:.1f} s CPU, "
          f"service {s_times[-1]:.1f} s wall {s_cpu[-1]:.1f} s CPU", flush=True)
a_best, s_best = min(a_times), min(s_times)
out["throughput"] = {"analyze_wall_s": a_times, "service_wall_s": s_times, "analyze_cpu_s": a_cpu,
                     "service_cpu_s": s_cpu, "wall_overhead": s_best / a_best - 1,
                     "cpu_overhead": min(s_cpu) / min(a_cpu) - 1}
print(f"throughput: analyze {a_best:.1f} s, service {s_best:.1f} s (best wall), overhead "
      f"{100 * (s_best / a_best - 1):+.1f}%; CPU {min(a_cpu):.1f} s vs {min(s_cpu):.1f} s, "
      f"overhead {100 * (min(s_cpu) / min(a_cpu) - 1):+.1f}%", flush=True)

# ---- 2. API under load ------------------------------------------------------------------------
POST_LUA = r"""
-- Each wrk thread numbers its own requests; the thread id and the run keep keys unique.
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local n = 0
local run = "%s-" .. tostring(os.time())
local body = '{"slides": [{"path": "%s"}]}'
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/batches", {
    ["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "wrk-" .. run .. "-" .. tostring(tid) .. "-" .. n}, body)
end
"""
GET_LUA = r"""
wrk.headers["Authorization"] = "Bearer %s"
"""


def wrk(url, path, lua):
    script = os.path.join(tmp, "req.lua")
    with open(script, "w") as f:
        f.write(lua)
    p = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s",
                        "--latency", "-s", script, url + path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = p.stdout

    def lat(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {"rps": rps, "p50_ms": lat("50"), "p99_ms": lat("99"), "errors": errors}


data = os.path.join(tmp, "data-load")
sub = T.token(data, "submitter", "load")
tok = sub["token"]
srv = start_server(data)
load = {}
try:
    r = T.request(srv.url, "POST", "/v1/batches", tok, {"slides": [{"path": slides[0]}]},
                  {"Idempotency-Key": "seed"})
    job = r.json()["jobs"][0]["id"]
    T.wait_batch(T.Client(srv.url, None), tok, r.json()["id"], 600)
    # Idle: nothing is analyzed. The POSTs queue jobs; cancel them before the next phase.
    load["idle_get"] = wrk(srv.url, f"/v1/jobs/{job}", GET_LUA % tok)
    load["idle_post"] = wrk(srv.url, "/v1/batches", POST_LUA % ("idle", slides[1], tok))
    listed = T.request(srv.url, "GET", "/v1/jobs?state=queued&limit=500", tok).json()["jobs"]
    while listed:
        for b in {j["batch_id"] for j in listed}:
            T.request(srv.url, "POST", f"/v1/batches/{b}/cancel", tok)
        listed = T.request(srv.url, "GET", "/v1/jobs?state=queued&limit=500", tok).json()["jobs"]
    # Busy: the worker analyzes a batch while the API is loaded.
    r = T.request(srv.url, "POST", "/v1/batches", tok, {"slides": [{"path": p} for p in slides]},
                  {"Idempotency-Key": "busy"})
    busy_batch = r.json()["id"]
    time.sleep(2)
    load["busy_get"] = wrk(srv.url, f"/v1/jobs/{job}", GET_LUA % tok)
    load["busy_post"] = wrk(srv.url, "/v1/batches", POST_LUA % ("busy", slides[1], tok))
    b = T.request(srv.url, "GET", f"/v1/batches/{busy_batch}", tok).json()
    load["busy_batch_progress"] = b["counts"]
    metrics = T.request(srv.url, "GET", "/v1/metrics", tok).body.decode()
    tiles = re.search(r"^histoplan_tiles_total (\d+)", metrics, re.M)
    load["tiles_during_run"] = int(tiles.group(1)) if tiles else None
finally:
    srv.terminate()
out["load"] = load
for k, v in load.items():
    if isinstance(v, dict) and "rps" in v:
        print(f"{k:10s} {v['rps']:9.0f} req/s  p50 {v['p50_ms']:.2f} ms  p99 {v['p99_ms']:.2f} ms  "
              f"errors {v['errors']}")
print(f"busy batch while loaded: {load['busy_batch_progress']}")
if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
shutil.rmtree(tmp, ignore_errors=True)
