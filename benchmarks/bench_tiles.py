"""Deep Zoom tile serving side by side, on loopback, in one run on one machine:

  histoplan   `histoplan serve` (C, libmicrohttpd, its tile cache), GET /v1/slides/{job}_files/...
  peer        python3-openslide's openslide.deepzoom.DeepZoomGenerator behind Python's standard
              http.server (ThreadingHTTPServer, HTTP/1.1 keep-alive), the layout of OpenSlide's
              own deep zoom example server, JPEG quality 75 on both sides

Both serve the same slide, the same tiles: every Deep Zoom tile of the slide, shuffled with a
fixed seed. Load comes from wrk (Debian's wrk 4.1) with a Lua script that walks the list, each
connection at its own offset, for --seconds:

  cold   a freshly started server; the list is long enough that no tile is asked twice in the run
         (the first --warm-set tiles are skipped, see below), so every tile is read, resampled
         and encoded
  raster a freshly started server again, the same tiles not yet asked, in the order a viewer
         panning across the slide asks them: level by level from the finest, row by row (each
         connection walks its own stretch); neighbouring tiles share the slide's JPEG tiles
  warm   the first --warm-set tiles of the list, requested once beforehand, then asked at random
         (histoplan answers from its tile cache; the peer has OpenSlide's own decoded-tile cache
         and the page cache, but encodes every answer)

Reported: tiles/s, p50 and p99 latency (wrk's), non-2xx answers and socket errors, and the ratio.

Usage:
  /usr/bin/python3 benchmarks/bench_tiles.py [--slide S.tiff | --size 40000] [--seconds 4]
      [--connections 8] [--warm-set 500] [--json out.json]
Run scripts/build.sh first (build/histoplan).
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "scripts"))
os.environ.setdefault("HP_BIN", os.path.join(SRC, "build", "histoplan"))
os.environ.setdefault("HP_SOURCE_DIR", SRC)
import service_testlib as T  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--slide", help="a slide OpenSlide opens (default: a generated one)")
ap.add_argument("--size", type=int, default=40000, help="side of the generated slide (large enough that a cold run never asks a tile twice)")
ap.add_argument("--seconds", type=int, default=4)
ap.add_argument("--connections", type=int, default=8)
ap.add_argument("--wrk-threads", type=int, default=2)
ap.add_argument("--warm-set", type=int, default=500)
ap.add_argument("--json")
args = ap.parse_args()

if not shutil.which("wrk"):
    sys.exit("wrk is not installed (apt-get install wrk)")

tmp = tempfile.mkdtemp(prefix="hp-bench-tiles-")
slide = args.slide
if not slide:
    slide = T.synth(os.path.join(tmp, "slide.tiff"), args.size, args.size, 7)
slide = os.path.abspath(slide)

import openslide  # noqa: E402
from openslide.deepzoom import DeepZoomGenerator  # noqa: E402

dz = DeepZoomGenerator(openslide.OpenSlide(slide), tile_size=254, overlap=1, limit_bounds=False)
tiles = [(lv, c, r) for lv in range(dz.level_count)
         for c in range(dz.level_tiles[lv][0]) for r in range(dz.level_tiles[lv][1])]
random.Random(1).shuffle(tiles)
warm = tiles[:args.warm_set]
cold = tiles[args.warm_set:]
raster = sorted(cold, key=lambda t: (-t[0], t[2], t[1]))
LISTS = {"cold": cold, "raster": raster, "warm": warm}
MODES = ("cold", "raster", "warm")
print(f"slide {os.path.basename(slide)} {dz.level_dimensions[-1]}, {len(tiles)} tiles, "
      f"cold list {len(cold)}, warm set {len(warm)}", flush=True)

# ---- the peer: openslide.deepzoom behind http.server, in its own process ----------------------
PEER = r'''
import io, re, sys, http.server, openslide
from openslide.deepzoom import DeepZoomGenerator
dz = DeepZoomGenerator(openslide.OpenSlide(sys.argv[1]), tile_size=254, overlap=1, limit_bounds=False)
rx = re.compile(r"^/slide_files/(\d+)/(\d+)_(\d+)\.jpeg$")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        m = rx.match(self.path)
        try:
            tile = dz.get_tile(int(m.group(1)), (int(m.group(2)), int(m.group(3))))
        except Exception:
            self.send_error(404); return
        buf = io.BytesIO(); tile.save(buf, "jpeg", quality=75); b = buf.getvalue()
        self.send_response(200); self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on http://127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
'''

LUA = r'''
local urls = {}
for line in io.lines(os.getenv("TILE_LIST")) do urls[#urls + 1] = line end
local auth = os.getenv("TILE_AUTH")
if auth and #auth > 0 then wrk.headers["Authorization"] = auth end
local n_threads = tonumber(os.getenv("TILE_THREADS"))
local mode = os.getenv("TILE_MODE")
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(a)
  idx = math.floor(id * #urls / n_threads)
  math.randomseed(id + 1)
end
function request()
  local u
  if mode == "warm" then u = urls[math.random(#urls)] else idx = idx + 1; u = urls[(idx % #urls) + 1] end
  return wrk.format("GET", u)
end
'''


def start_peer(log):
    p = subprocess.Popen(["/usr/bin/python3", "-c", PEER, slide], stdout=subprocess.PIPE,
                         stderr=open(log, "ab"))
    line = p.stdout.readline().decode()
    m = re.search(r"listening on (\S+)", line)
    if not m:
        p.kill()
        sys.exit(f"the peer did not start: {line!r}")
    return p, m.group(1)


def prefetch(url, paths, headers):
    """Asks each path once (4 connections), so the warm set is warm."""
    u = re.match(r"http://([^:/]+):(\d+)", url)
    chunks = [paths[i::4] for i in range(4)]
    bad = []

    def run(chunk):
        c = http.client.HTTPConnection(u.group(1), int(u.group(2)), timeout=120)
        for p in chunk:
            c.request("GET", p, headers=headers)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad.append((p, r.status))
        c.close()
    th = [threading.Thread(target=run, args=(ch,)) for ch in chunks]
    for t in th:
        t.start()
    for t in th:
        t.join()
    if bad:
        sys.exit(f"prefetch: {len(bad)} failures, first {bad[0]}")


def wrk(url, paths, auth, mode):
    lst = os.path.join(tmp, f"urls-{mode}.txt")
    with open(lst, "w") as f:
        f.write("\n".join(paths) + "\n")
    lua = os.path.join(tmp, "tiles.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    env = dict(os.environ, TILE_LIST=lst, TILE_AUTH=auth or "", TILE_MODE=mode,
               TILE_THREADS=str(args.wrk_threads))
    out = subprocess.run(["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d",
                          f"{args.seconds}s", "--timeout", "30s", "--latency", "-s", lua, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    reqs = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res = {"requests": int(reqs.group(1)) if reqs else 0, "tiles_per_s": float(rps.group(1)) if rps else 0.0,
           "p50_ms": ms("50%"), "p99_ms": ms("99%"), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
           "socket_errors": sum(map(int, sock.groups())) if sock else 0}
    if mode != "warm" and res["requests"] > len(paths):
        res["note"] = f"the {mode} list wrapped: some tiles were asked twice"
    return res


results = {}
# ---- histoplan ---------------------------------------------------------------------------------
data = os.path.join(tmp, "data")
tok = T.token(data, "pathologist", "bench")["token"]
sub = T.token(data, "submitter", "bench lab")["token"]
for mode in MODES:
    srv = T.serve(data, os.path.join(tmp, "serve.log"),
                  ["--slide-root", os.path.dirname(slide), "--rate-limit", "0", "--workers", "0"])
    try:
        if mode == "cold":  # the first start submits the slide; later starts find the job
            r = T.request(srv.url, "POST", "/v1/batches", sub, {"slides": [{"path": slide}]},
                          {"Idempotency-Key": "bench"})
            job = r.json()["jobs"][0]["id"]
            # Open the slide once (both sides have it open before timing starts).
            T.request(srv.url, "GET", f"/v1/slides/{job}.dzi", tok)
        hp_paths = lambda ts: [f"/v1/slides/{job}_files/{lv}/{c}_{r}.jpeg" for lv, c, r in ts]  # noqa: E731
        if mode == "warm":
            prefetch(srv.url, hp_paths(warm), {"Authorization": f"Bearer {tok}"})
        else:
            T.request(srv.url, "GET", f"/v1/slides/{job}.dzi", tok)
        results[("histoplan", mode)] = wrk(srv.url, hp_paths(LISTS[mode]), f"Bearer {tok}", mode)
        print("histoplan", mode, results[("histoplan", mode)], flush=True)
    finally:
        srv.terminate()

# ---- the peer ----------------------------------------------------------------------------------
for mode in MODES:
    p, url = start_peer(os.path.join(tmp, "peer.log"))
    try:
        peer_paths = lambda ts: [f"/slide_files/{lv}/{c}_{r}.jpeg" for lv, c, r in ts]  # noqa: E731
        if mode == "warm":
            prefetch(url, peer_paths(warm), {})
        results[("peer", mode)] = wrk(url, peer_paths(LISTS[mode]), None, mode)
        print("peer", mode, results[("peer", mode)], flush=True)
    finally:
        p.terminate()
        p.wait()

print()
print(f"| cache | server | tiles/s | p50 ms | p99 ms | errors |")
print(f"|---|---|---|---|---|---|")
for mode in MODES:
    for who in ("histoplan", "peer"):
        x = results[(who, mode)]
        print(f"| {mode} | {who} | {x['tiles_per_s']:.0f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | "
              f"{x['non_2xx'] + x['socket_errors']} |")
for mode in MODES:
    a, b = results[("histoplan", mode)], results[("peer", mode)]
    print(f"{mode}: histoplan / peer = {a['tiles_per_s'] / max(b['tiles_per_s'], 1e-9):.1f}x tiles/s")
if args.json:
    with open(args.json, "w") as f:
        json.dump({f"{w}_{m}": v for (w, m), v in results.items()}, f, indent=1)
shutil.rmtree(tmp, ignore_errors=True)
