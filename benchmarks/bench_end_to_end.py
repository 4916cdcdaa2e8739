#!/usr/bin/python3
"""End-to-end throughput on a generated slide: `histoplan analyze` against the model alone.

In one run, on the same machine, the same model and the same batch size:
  end to end   `histoplan analyze SLIDE --model M --batch N --threads T --backend B`: slide ->
               tissue -> tiles -> model -> heatmaps/regions/findings; its findings.json gives the
               time of each stage (timings_s) and the tiles analysed
  model only   `histoplan model bench M --batch N --threads T --backend B --json`: the same model
               at the same batch size on random input already in memory (no reading, no decoding)
  decoding     (when build/benchmarks/bench_tile_read exists) histoplan's tile loader alone on the
               same slide, every tile of the grid at the model's tile size and MPP, T reader
               threads: how fast tiles can be read and decoded with nothing else running

It prints tiles/s end to end (whole run, and the inference stage alone, where reading and decoding
overlap the model), model-only tiles/s, their ratios, the share of each stage, and whether decoding
is the bottleneck. findings.json carries no loader statistics, so that is inferred: decoding is the
bottleneck when it alone is slower than the model alone (without the tile loader benchmark: when
over half the inference stage is not model time). On the CPU the readers and the model share the
same cores, so the inference stage loses to decoding about the CPU time decoding takes, unless the
model leaves cores idle part of the time (then decoding fills them and costs less).

The slide is generated once (`histoplan synth`, default 16384x16384 px, 0.25 um/px, seed 2001)
and kept in out/bench/ (git ignores out/). This is a benchmark, not a test.

  /usr/bin/python3 benchmarks/bench_end_to_end.py [--size 16384] [--seed 2001] [--batch 16]
      [--threads T] [--rounds R] [--backend cpu|cuda] [--histoplan build/histoplan] [--json F]
"""

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_cpu_densenet import cpu_busy_s, git_state, last_json, machine, own_cpu_s  # noqa: E402

DEFAULT_MODEL = os.path.join(ROOT, "models", "zoo", "histoplan-default-densenet.onnx")
STAGES = ("open", "tissue", "tiling", "inference", "heatmap", "regions", "writing")


def run(cmd, **kw):
    t0, c0 = time.perf_counter(), own_cpu_s()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    run.cpu_s = own_cpu_s() - c0  # the child's CPU seconds (all threads)
    if p.returncode != 0:
        sys.exit(f"bench_end_to_end: failed (rc {p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout, wall


def slide_path(a):
    if a.slide:
        return os.path.abspath(a.slide)
    os.makedirs(a.cache, exist_ok=True)
    path = os.path.join(a.cache, f"e2e-{a.size}-mpp{a.mpp:g}-seed{a.seed}.tiff")
    if not os.path.exists(path):
        print(f"generating {path} ...", flush=True)
        tmp = path[:-5] + ".partial.tiff"
        run([a.histoplan, "synth", "--out", tmp, "--size", f"{a.size}x{a.size}", "--seed",
             str(a.seed), "--mpp", str(a.mpp), "--overwrite"])
        os.replace(tmp, path)
    return path


def analyze(a, slide, out):
    cmd = [a.histoplan, "analyze", slide, "--model", a.model, "--out", out, "--slide-id", "bench",
           "--overwrite", "--batch", str(a.batch), "--threads", str(a.threads),
           "--backend", a.backend]
    _, wall = run(cmd)
    with open(os.path.join(out, "bench", "findings.json")) as f:
        fd = json.load(f)
    an, tm = fd["analysis"], fd["timings_s"]
    n = an["tiles_analysed"]
    return {"command": " ".join(cmd), "process_wall_s": wall, "process_cpu_s": run.cpu_s,
            "tiles_analysed": n,
            "tiles_total": an["tiles_total"], "batch_size": an["batch_size"],
            "batches": math.ceil(n / a.batch), "timings_s": tm,
            "tiles_per_s_total": n / tm["total"], "tiles_per_s_inference": n / tm["inference"]}


def model_bench(a):
    cmd = [a.histoplan, "model", "bench", a.model, "--batch", str(a.batch), "--backend", a.backend,
           "--iterations", str(a.iterations), "--warmup", "2", "--json"]
    if a.backend == "cpu":
        cmd += ["--threads", str(a.threads)]
    out, _ = run(cmd)
    r = last_json(out)
    r["command"] = " ".join(cmd)
    return r


def decode_bench(a, slide):
    if not os.path.exists(a.tile_bench):
        return None
    with open(a.model[:-5] + ".card.json") as f:
        card = json.load(f)
    cmd = [a.tile_bench, slide, "--target", str(card["mpp"]), "--tile", str(card["input_size"][0]),
           "--threads", str(a.threads), "--batch", str(a.batch)]
    out, _ = run(cmd)
    r = last_json(out)
    r["command"] = " ".join(cmd)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--tile-bench", default=os.path.join(ROOT, "build", "benchmarks", "bench_tile_read"))
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--slide", help="use this slide instead of generating one")
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=2001)
    ap.add_argument("--mpp", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iterations", type=int, default=10, help="model bench timed batches")
    ap.add_argument("--rounds", type=int, default=1,
                    help="interleaved rounds (analyze, model bench, decoding); best of each kept")
    ap.add_argument("--backend", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "out", "bench"))
    ap.add_argument("--json", help="write everything to this file")
    a = ap.parse_args()
    a.model = os.path.abspath(a.model)
    a.histoplan = os.path.abspath(a.histoplan)

    m, g = machine(), git_state()
    print(f"date     {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"machine  {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {' '.join(m['isa'])}, "
          f"Linux {m['kernel']}")
    dirty = (f" + {g['uncommitted_engine_files']} uncommitted engine files ({g['worktree_hash']})"
             if g["uncommitted_engine_files"] else "")
    bin_time = datetime.datetime.fromtimestamp(os.path.getmtime(a.histoplan), datetime.timezone.utc)
    print(f"commit   {g['commit']}{dirty}; {a.histoplan} built {bin_time:%H:%M:%S} UTC")
    slide = slide_path(a)
    print(f"slide    {os.path.relpath(slide, ROOT)} ({os.path.getsize(slide) / 1e6:.0f} MB)")
    print(f"model    {os.path.relpath(a.model, ROOT)}, backend {a.backend}, batch {a.batch}, "
          f"{a.threads} threads", flush=True)

    out_dir = os.path.join(a.cache, "e2e-run")
    busy0, own0, t0 = cpu_busy_s(), own_cpu_s(), time.perf_counter()
    rounds = []
    for r in range(a.rounds):
        b0, o0, r0 = cpu_busy_s(), own_cpu_s(), time.perf_counter()
        e = analyze(a, slide, out_dir)
        mb = model_bench(a)
        dec = decode_bench(a, slide)
        oth = None if b0 is None else \
            max(0.0, (cpu_busy_s() - b0) - (own_cpu_s() - o0)) / (time.perf_counter() - r0)
        rounds.append({"analyze": e, "model": mb, "decode": dec, "other_cores": oth})
        print(f"round {r}: end to end {e['tiles_per_s_total']:.1f} tiles/s (inference stage "
              f"{e['tiles_per_s_inference']:.1f}), model only {mb['items_per_s']:.1f}"
              + (f", decoding only {dec['tiles_per_s']:.1f}" if dec else "")
              + ("" if oth is None else f"; other work {oth:.2f} cores"), flush=True)
    wall = time.perf_counter() - t0
    other = None
    if busy0 is not None:
        other = max(0.0, (cpu_busy_s() - busy0) - (own_cpu_s() - own0)) / wall

    e = max((x["analyze"] for x in rounds), key=lambda x: x["tiles_per_s_total"])
    mb = max((x["model"] for x in rounds), key=lambda x: x["items_per_s"])
    decs = [x["decode"] for x in rounds if x["decode"]]
    dec = max(decs, key=lambda x: x["tiles_per_s"]) if decs else None
    tm = e["timings_s"]
    model_tps = mb["items_per_s"]
    # analyze runs every batch at full size (the last one zero-filled): the model-only figure for
    # the slots it actually computes
    slots = e["batches"] * a.batch
    model_s = slots / model_tps

    print()
    print(f"tiles analysed {e['tiles_analysed']} of {e['tiles_total']} in the grid, "
          f"{e['batches']} batches of {a.batch}")
    print(f"{'figure':48s} {'tiles/s':>9s} {'vs model only':>14s}")
    print(f"{'model only (model bench, median batch)':48s} {model_tps:9.1f} {'1.00':>14s}")
    print(f"{'end to end, inference stage (read+decode+model)':48s} "
          f"{e['tiles_per_s_inference']:9.1f} {e['tiles_per_s_inference'] / model_tps:14.2f}")
    print(f"{'end to end, whole run (timings_s.total)':48s} "
          f"{e['tiles_per_s_total']:9.1f} {e['tiles_per_s_total'] / model_tps:14.2f}")
    print(f"{'end to end, process wall (incl. model load)':48s} "
          f"{e['tiles_analysed'] / e['process_wall_s']:9.1f} "
          f"{e['tiles_analysed'] / e['process_wall_s'] / model_tps:14.2f}")
    if dec:
        print(f"{'decoding only (tile loader, every grid tile)':48s} {dec['tiles_per_s']:9.1f} "
              f"{dec['tiles_per_s'] / model_tps:14.2f}")
    print()
    print(f"{'stage':12s} {'seconds':>9s} {'share':>7s}")
    for s in STAGES:
        print(f"{s:12s} {tm.get(s, 0):9.3f} {100 * tm.get(s, 0) / tm['total']:6.1f}%")
    print(f"{'total':12s} {tm['total']:9.3f}")
    print()

    # Where the inference stage's time went beyond the model's own time for the same batches.
    lost = tm["inference"] - model_s
    verdict = {"model_s_for_same_batches": model_s, "inference_over_model_s": lost}
    print(f"inference stage {tm['inference']:.2f} s; the model alone would take {model_s:.2f} s "
          f"for the same {slots} slots: {lost:+.2f} s ({100 * lost / tm['inference']:.0f}% of the "
          f"stage) for reading, decoding and handing over tiles")
    if dec:
        dec_cpu_ms = 1000 * dec["cpu_s"] / dec["tiles"]
        verdict.update(decode_tps=dec["tiles_per_s"], decode_cpu_ms_per_tile=dec_cpu_ms,
                       analyze_cpu_ms_per_tile=1000 * e["process_cpu_s"] / e["tiles_analysed"])
        print(f"decoding alone {dec['tiles_per_s']:.1f} tiles/s = {dec['tiles_per_s'] / model_tps:.1f}x "
              f"the model, {dec_cpu_ms:.1f} CPU ms per tile; the whole analyze process used "
              f"{verdict['analyze_cpu_ms_per_tile']:.1f} CPU ms per tile analysed")
        bottleneck = dec["tiles_per_s"] < model_tps
        verdict["decoding_is_bottleneck"] = bottleneck
        print("decoding is the bottleneck: " + ("YES (decoding alone is slower than the model)"
              if bottleneck else
              "no (decoding alone is faster than the model, and the model takes "
              f"{100 * model_s / tm['inference']:.0f}% of the inference stage)"))
    else:
        share = lost / tm["inference"]
        verdict["decoding_is_bottleneck"] = share > 0.5
        print("decoding is the bottleneck: " + ("likely (over half the inference stage is not model "
              "time)" if share > 0.5 else "no (the model takes most of the inference stage)"))
    if other is not None:
        print(f"other work on the machine during the run: {other:.2f} cores"
              + ("  CONTENDED" if other > 0.1 else ""))

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                       "machine": m, "git": g, "slide": slide, "args": vars(a), "rounds": rounds,
                       "best": {"analyze": e, "model": mb, "decode": dec}, "verdict": verdict,
                       "other_cores": other}, f, indent=1)


if __name__ == "__main__":
    main()
