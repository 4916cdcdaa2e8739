#!/usr/bin/env python3
"""Tile reading + decoding throughput: histoplan's tile loader against a plain loop over
python3-openslide's read_region (plus PIL's area resize when the level needs it), reading the very
same tiles, on one core and on all cores, side by side in one run. With --plain, histoplan is also
timed reading through its own libtiff reader (io/slide_plain.c) instead of OpenSlide.

    /usr/bin/python3 benchmarks/bench_tile_read.py [--size 20000] [--mpp 0.25] [--target 0.5]
        [--tile 224] [--threads N] [--rounds 2] [--max-tiles 0] [--plain] [--json out/bench/tile-read.json]

The slide is generated once by `build/histoplan synth` (seed 1) into out/bench/ (git ignores out/).
histoplan's side is benchmarks/bench_tile_read.c (built as build/benchmarks/bench_tile_read, or
pass --bin); it builds the grid with no tissue mask (every tile) and writes the tile list that the
peer then reads, so both read the same level, origins and sizes. All-cores peer: a
multiprocessing pool, one OpenSlide handle per process, contiguous runs of tiles per task (the
peer's best case: neighbouring tiles share the slide's JPEG tiles in each process's cache).

Same computation: tile K (middle of the list) from histoplan is compared with the peer's pixels
(max |diff|; resampling rounding may differ by 1).
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_slide = None


def _peer_init(path):
    global _slide
    import openslide
    _slide = openslide.OpenSlide(path)


def _peer_read(chunk):
    from PIL import Image
    n = 0
    for level, x0, y0, rw, rh, tile in chunk:
        im = _slide.read_region((x0, y0), level, (rw, rh)).convert("RGB")
        if (rw, rh) != (tile, tile):
            im = im.resize((tile, tile), Image.BOX if rw > tile else Image.BILINEAR)
        im.tobytes()  # the decoded pixels, as a consumer would take them
        n += 1
    return n


def peer_run(path, tiles, procs, chunk=32):
    chunks = [tiles[i:i + chunk] for i in range(0, len(tiles), chunk)]
    if procs == 1:
        _peer_init(path)
        c0, t0 = time.process_time(), time.perf_counter()
        n = sum(_peer_read(c) for c in chunks)
        return n, time.perf_counter() - t0, time.process_time() - c0
    pool = mp.Pool(procs, initializer=_peer_init, initargs=(path,))
    pool.map(abs, range(procs))  # workers started and slides opened before timing
    c0, t0 = os.times(), time.perf_counter()
    n = sum(pool.imap(_peer_read, chunks))
    wall = time.perf_counter() - t0
    pool.close()
    pool.join()  # the workers' CPU time is counted once they are reaped
    c1 = os.times()
    # Includes opening the slide in each worker (small next to thousands of tiles).
    cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
    return n, wall, cpu


def peer_tile(path, t):
    from PIL import Image
    import openslide
    level, x0, y0, rw, rh, tile = t
    im = openslide.OpenSlide(path).read_region((x0, y0), level, (rw, rh)).convert("RGB")
    if (rw, rh) != (tile, tile):
        im = im.resize((tile, tile), Image.BOX if rw > tile else Image.BILINEAR)
    return im.tobytes()


def cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--mpp", type=float, default=0.25)
    ap.add_argument("--target", type=float, default=0.5)
    ap.add_argument("--tile", type=int, default=224)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; best kept")
    ap.add_argument("--max-tiles", type=int, default=0, help="read only the first N tiles")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "benchmarks", "bench_tile_read"))
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--plain", action="store_true",
                    help="also time histoplan with its own libtiff reader instead of OpenSlide")
    ap.add_argument("--json")
    a = ap.parse_args()

    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} is missing: build it (benchmarks/CMakeLists.txt, included by the root "
                 "CMakeLists.txt) or pass --bin")
    outdir = os.path.join(ROOT, "out", "bench")
    os.makedirs(outdir, exist_ok=True)
    slide = os.path.join(outdir, f"tiles-{a.size}-mpp{a.mpp}-seed1.tiff")
    if not os.path.exists(slide):
        print(f"generating {slide} ...", flush=True)
        subprocess.run([a.histoplan, "synth", "--out", slide, "--size", f"{a.size}x{a.size}",
                        "--seed", "1", "--mpp", str(a.mpp), "--overwrite"], check=True)
    tiles_path = os.path.join(outdir, "tiles-list.txt")
    dump_path = os.path.join(outdir, "tile-dump.rgb")

    def histoplan(threads, first=False, reader="auto"):
        cmd = [a.bin, slide, "--target", str(a.target), "--tile", str(a.tile), "--threads",
               str(threads), "--batch", str(a.batch), "--depth", str(a.depth), "--reader", reader]
        if a.max_tiles:
            cmd += ["--max-tiles", str(a.max_tiles)]
        if first:
            cmd += ["--tiles-out", tiles_path]
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(r.stdout), cmd

    info, cmd0 = histoplan(1, first=True)  # also warms the page cache for everyone
    with open(tiles_path) as f:
        tiles = [tuple(int(v) for v in line.split()) for line in f]
    k = len(tiles) // 2
    subprocess.run([a.bin, slide, "--target", str(a.target), "--tile", str(a.tile),
                    "--threads", "1", "--max-tiles", str(k + 1), "--dump-tile", str(k), dump_path],
                   check=True, capture_output=True)
    with open(dump_path, "rb") as f:
        ours = f.read()
    theirs = peer_tile(slide, tiles[k])
    maxdiff = max(abs(x - y) for x, y in zip(ours, theirs)) if len(ours) == len(theirs) else None

    configs = [("histoplan", 1), ("openslide-python", 1), ("histoplan", a.threads),
               ("openslide-python", a.threads)]
    if a.plain:
        configs += [("histoplan-plain", 1), ("histoplan-plain", a.threads)]
    best, best_cpu = {}, {}
    rounds = []
    busy0, t0 = cpu_busy(), time.time()
    own = 0.0
    for r in range(a.rounds):
        for name, n in configs:
            c0 = os.times()
            if name.startswith("histoplan"):
                res, _ = histoplan(n, reader="plain" if name == "histoplan-plain" else "auto")
                tps, wall, cpu = res["tiles_per_s"], res["wall_s"], res["cpu_s"]
            else:
                cnt, wall, cpu = peer_run(slide, tiles, n)
                assert cnt == len(tiles)
                tps = cnt / wall
            c1 = os.times()
            own += (c1.children_user + c1.children_system + c1.user + c1.system) - \
                   (c0.children_user + c0.children_system + c0.user + c0.system)
            cpu_ms = 1000 * cpu / len(tiles)
            rounds.append({"round": r, "engine": name, "threads": n, "tiles_per_s": tps,
                           "wall_s": wall, "cpu_s": cpu})
            key = (name, n)
            best[key] = max(best.get(key, 0), tps)
            best_cpu[key] = min(best_cpu.get(key, 1e99), cpu_ms)
            print(f"round {r} {name:17s} {n} thread(s): {tps:8.1f} tiles/s ({wall:.2f} s), "
                  f"{cpu_ms:.2f} CPU ms/tile", flush=True)
    elapsed = time.time() - t0
    other = max(0.0, (cpu_busy() - busy0 - own) / elapsed)

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print()
    print(f"date {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  commit {commit}  "
          f"{cpu}, {os.cpu_count()} cores  {platform.python_version()}")
    print(f"slide {os.path.basename(slide)} ({info['format']}), {len(tiles)} tiles of {a.tile} px at "
          f"{a.target} um/px: level {info['level']} read {info['read_w']}x{info['read_h']}")
    print(f"same pixels: tile {k} max |histoplan - peer| = {maxdiff}")
    print(f"other load during the run: {other:.2f} cores" + ("  CONTENDED" if other > 0.1 else ""))
    print(f"{'threads':>7}  {'histoplan tiles/s':>17}  {'openslide-python tiles/s':>24}  ratio  "
          f"CPU ms/tile histoplan / peer")
    for n in sorted({1, a.threads}):
        h, p = best[("histoplan", n)], best[("openslide-python", n)]
        hc, pc = best_cpu[("histoplan", n)], best_cpu[("openslide-python", n)]
        print(f"{n:>7}  {h:17.1f}  {p:24.1f}  {h / p:5.2f}  {hc:.2f} / {pc:.2f}")
    if a.plain:
        for n in sorted({1, a.threads}):
            h, p = best[("histoplan-plain", n)], best[("openslide-python", n)]
            print(f"{n:>7}  histoplan with its plain TIFF reader: {h:.1f} tiles/s, {h / p:.2f}x the peer, "
                  f"{best_cpu[('histoplan-plain', n)]:.2f} CPU ms/tile")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"commit": commit, "cpu": cpu, "cores": os.cpu_count(), "slide": slide,
                       "tiles": len(tiles), "info": info, "max_diff": maxdiff, "other_cores": other,
                       "rounds": rounds, "command": cmd0,
                       "best": {f"{k[0]}/{k[1]}": v for k, v in best.items()},
                       "best_cpu_ms_per_tile": {f"{k[0]}/{k[1]}": v for k, v in best_cpu.items()}},
                      f, indent=1)


if __name__ == "__main__":
    main()
