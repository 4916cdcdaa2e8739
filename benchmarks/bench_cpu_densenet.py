#!/usr/bin/python3
"""CPU side-by-side benchmark: histoplan's CPU backend against PyTorch eager and OpenCV DNN.

All three run the same ONNX file with the same weights on the same machine in the same run:
  histoplan   `histoplan model bench M.onnx --backend cpu --threads <cores> --json`
  pytorch     the same network as a torch module (the weights the ONNX file was exported from),
              torch.set_num_threads(<cores>), torch.inference_mode()
  opencv      cv2.dnn.readNetFromONNX(M.onnx), DNN_BACKEND_OPENCV / DNN_TARGET_CPU,
              cv2.setNumThreads(<cores>)

Each engine runs in its own child process, so its peak resident memory (ru_maxrss of that child,
read with os.wait4) is its own. Each does the same warm-up batches and reports the median over the
same number of timed batches. Before timing, every engine's output on one seeded random input is
compared with PyTorch's (max relative error), so the figures are for the same computation.

This is a benchmark, not a test: it is not registered with ctest and it asserts nothing about speed.
Run it with Debian's interpreter (python3-torch, python3-torchvision, python3-opencv):
  /usr/bin/python3 benchmarks/bench_cpu_densenet.py [--model densenet121|demo|PATH.onnx]
      [--batch 8] [--iterations 7] [--warmup 2] [--json out.json]
scripts/install-bench-deps.sh installs the peers.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEMO = os.path.join(ROOT, "models", "zoo", "histoplan-demo-densenet.onnx")
SEED = 0
OPSET = 13


# ---------------------------------------------------------------------------------------------
# Children. Each is this same file run with --child <engine>; it prints one JSON line last.

def _torch_model(spec):
    """The torch module the ONNX file was exported from, with the same weights."""
    import torch
    if spec["kind"] == "torchvision":
        import torchvision
        m = getattr(torchvision.models, spec["arch"])(weights=None)
        m.load_state_dict(torch.load(spec["weights"]))
        return m.eval()
    if spec["kind"] == "demo":
        import importlib.util
        path = os.path.join(ROOT, "scripts", "make-demo-model.py")
        s = importlib.util.spec_from_file_location("make_demo_model", path)
        mod = importlib.util.module_from_spec(s)
        s.loader.exec_module(mod)
        return mod.build().eval()
    raise SystemExit(f"no PyTorch module is known for {spec}")


def _time_loop(run_once, warmup, iterations):
    for _ in range(warmup):
        run_once()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        run_once()
        times.append(time.perf_counter() - t0)
    return times


def _opencv_time(model_path, x, threads, output, warmup, iterations):
    """OpenCV's dnn module on its own CPU backend: saves one output to `output` (for the accuracy
    check), then times it. Returns (times, cv2); bench_superres.py uses it too."""
    import numpy as np
    import cv2
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromONNX(model_path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def run_once():
        net.setInput(x)
        return net.forward()
    np.save(output, run_once())
    return _time_loop(run_once, warmup, iterations), cv2


def child_main(args):
    import numpy as np
    spec = json.loads(args.child_spec)
    x = np.load(spec["input"])
    threads = spec["threads"]
    out = {"engine": args.child}
    if args.child == "pytorch":
        import torch
        torch.set_num_threads(threads)
        model = _torch_model(spec["torch"])
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            y = model(xt).numpy()
            np.save(spec["output"], y)
            times = _time_loop(lambda: model(xt), spec["warmup"], spec["iterations"])
        out.update(version=torch.__version__, threads=torch.get_num_threads(),
                   config=f"torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}")
    elif args.child == "opencv":
        times, cv2 = _opencv_time(spec["model"], x, threads, spec["output"], spec["warmup"], spec["iterations"])
        out.update(version=cv2.__version__, threads=cv2.getNumThreads(), config=f"OpenCV {cv2.__version__}")
    else:
        raise SystemExit(f"unknown child engine {args.child}")
    out["times_s"] = times
    out["peak_rss_mib_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent.

def run_child(cmd, env=None):
    """Runs cmd; returns (stdout, stderr, rc, wall_s, peak RSS MiB of exactly that child)."""
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        so.seek(0)
        se.seek(0)
        return so.read().decode(), se.read().decode(), p.returncode, wall, ru.ru_maxrss / 1024.0


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def machine():
    cpu = "unknown"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa,
            "ram_gib": round(mem_gib, 1) if mem_gib else None,
            "kernel": platform.release(), "host": socket.gethostname()}


def cpu_busy_s():
    """Seconds of CPU time all processes on the machine have used since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """CPU seconds used by this process and its waited-for children."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def git_state():
    """Commit measured, and whether the working tree differs from it (other engineers' uncommitted
    work is built into build/histoplan too, so a bare commit would misdescribe the binary)."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [l[3:] for l in git("status", "--porcelain", "--untracked-files=all").splitlines()
               if l[3:].split("/")[0] in ("kernels", "models", "cli", "common", "CMakeLists.txt")]
    h = hashlib.sha256()
    for path in sorted(changed):
        h.update(path.encode())
        try:
            with open(os.path.join(ROOT, path), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"<deleted>")
    return {"commit": commit, "uncommitted_engine_files": len(changed),
            "worktree_hash": h.hexdigest()[:12] if changed else None}


def prepare_model(name, cache):
    """Returns (onnx path, torch spec). densenet121 is exported once into the cache (seeded weights,
    opset 13, dynamic batch axis) together with the state dict the PyTorch peer loads."""
    if name in ("demo", DEMO, os.path.relpath(DEMO, ROOT)):
        return DEMO, {"kind": "demo"}
    if name.endswith(".onnx"):
        return os.path.abspath(name), None
    os.makedirs(cache, exist_ok=True)
    onnx_path = os.path.join(cache, f"{name}-seed{SEED}-op{OPSET}.onnx")
    pt_path = os.path.join(cache, f"{name}-seed{SEED}.pt")
    spec = {"kind": "torchvision", "arch": name, "weights": pt_path}
    if not (os.path.exists(onnx_path) and os.path.exists(pt_path)):
        print(f"exporting {name} (seed {SEED}, opset {OPSET}) to {onnx_path} ...", flush=True)
        code = f"""
import torch, torchvision
torch.manual_seed({SEED})
m = torchvision.models.{name}(weights=None).eval()
# Mildly random BatchNorm statistics and affine terms, so an engine that ignored or misapplied them
# would disagree with PyTorch (with the defaults 0/1/1/0 it would not).
g = torch.Generator().manual_seed({SEED} + 1)
with torch.no_grad():
    for b in m.modules():
        if isinstance(b, torch.nn.BatchNorm2d):
            n = b.num_features
            b.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
            b.running_var.copy_(0.5 + torch.rand(n, generator=g))
            b.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=g))
            b.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
torch.save(m.state_dict(), {pt_path!r} + ".tmp")
torch.onnx.export(m, torch.zeros(1, 3, 224, 224), {onnx_path!r} + ".tmp", opset_version={OPSET},
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={{"input": {{0: "N"}}, "logits": {{0: "N"}}}}, do_constant_folding=True)
"""
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
        if r.returncode:
            raise SystemExit("export failed")
        os.replace(pt_path + ".tmp", pt_path)
        os.replace(onnx_path + ".tmp", onnx_path)
    return onnx_path, spec


def input_shape(onnx_path):
    import onnx
    m = onnx.load(onnx_path, load_external_data=False)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.dim_value > 0 else None for d in dims]


def max_rel_err(a, ref):
    import numpy as np
    a = a.astype(np.float64)
    ref = ref.astype(np.float64)
    scale = max(float(np.abs(ref).max()), 1e-12)
    return float(np.abs(a - ref).max() / scale)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="densenet121",
                    help="a torchvision DenseNet name (exported with seeded weights), 'demo' for "
                         "models/zoo/histoplan-demo-densenet.onnx, or an ONNX path (no PyTorch peer)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=7, help="timed batches per engine (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed batches per engine first")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the engines this many times, interleaved; each keeps its best round")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads per engine (all cores)")
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--engines", default="histoplan,pytorch,opencv")
    ap.add_argument("--cache", default=os.path.join(ROOT, "out", "bench"),
                    help="where exported models are kept between runs (git ignores out/)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)

    import numpy as np
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    started = datetime.datetime.now().astimezone()
    mach = machine()
    gs = git_state()
    print(f"date     {started.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine  {mach['cpu']}, {mach['cores']} cores ({' '.join(mach['isa'])}), "
          f"{mach['ram_gib']} GiB RAM, Linux {mach['kernel']}")
    dirty = (f" + {gs['uncommitted_engine_files']} uncommitted engine files (worktree {gs['worktree_hash']})"
             if gs["uncommitted_engine_files"] else "")
    print(f"histoplan commit {gs['commit']}{dirty}")
    busy0, own0, wall0 = cpu_busy_s(), own_cpu_s(), time.perf_counter()

    onnx_path, torch_spec = prepare_model(args.model, args.cache)
    if torch_spec is None and "pytorch" in engines:
        print("note: no PyTorch module is known for this ONNX file; PyTorch peer skipped")
        engines.remove("pytorch")
    shape = input_shape(onnx_path)
    c, h, w = (shape[1] or 3), (shape[2] or 224), (shape[3] or 224)
    print(f"model    {os.path.relpath(onnx_path, ROOT)} ({os.path.getsize(onnx_path) / 1e6:.1f} MB), "
          f"input [{args.batch}, {c}, {h}, {w}] float32")
    print(f"timing   {args.warmup} warm-up + median of {args.iterations} timed batches per engine, "
          f"{args.threads} threads each, each engine in its own process"
          + (f"; {args.rounds} interleaved rounds, best round kept" if args.rounds > 1 else ""))

    work = tempfile.mkdtemp(prefix="hp-bench-")
    try:
        x = np.random.default_rng(SEED).uniform(-1.0, 1.0, (args.batch, c, h, w)).astype(np.float32)
        in_path = os.path.join(work, "input.npy")
        np.save(in_path, x)
        results, outputs = {}, {}
        runs = {e: [] for e in engines}
        for rnd in range(args.rounds):
            for e in engines:
                tag = f" (round {rnd + 1}/{args.rounds})" if args.rounds > 1 else ""
                print(f"running  {e}{tag} ...", flush=True)
                out_path = os.path.join(work, f"out-{e}.npy")
                if e == "histoplan":
                    if rnd == 0:
                        # Agreement run on the shared input (untimed). The timed bench uses its own seeded
                        # random input of the same shape; dense float math does not depend on the values.
                        so, se, rc, _, _ = run_child([args.histoplan, "model", "run", onnx_path, "--input",
                                                      in_path, "--output", out_path, "--backend", "cpu",
                                                      "--threads", str(args.threads), "--top", "1"])
                        if rc:
                            raise SystemExit(f"histoplan model run failed ({rc}): {se.strip()}")
                    cmd = [args.histoplan, "model", "bench", onnx_path, "--batch", str(args.batch),
                           "--backend", "cpu", "--threads", str(args.threads),
                           "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--json"]
                    so, se, rc, wall, rss = run_child(cmd)
                    if rc:
                        raise SystemExit(f"histoplan bench failed ({rc}): {se.strip()}")
                    j = last_json(so)
                    r = {"median_batch_s": j["median_batch_s"], "peak_rss_mib": rss,
                         "peak_rss_mib_self": j.get("peak_rss_mib"), "wall_s": wall,
                         "config": f"histoplan CPU backend, {args.threads} threads",
                         "command": " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in cmd)}
                else:
                    spec = {"input": in_path, "output": out_path, "model": onnx_path, "threads": args.threads,
                            "warmup": args.warmup, "iterations": args.iterations, "torch": torch_spec}
                    so, se, rc, wall, rss = run_child([sys.executable, os.path.abspath(__file__), "--child", e,
                                                       "--child-spec", json.dumps(spec)])
                    if rc:
                        raise SystemExit(f"{e} failed ({rc}):\n{se.strip()[-2000:]}")
                    j = last_json(so)
                    r = {"median_batch_s": statistics.median(j["times_s"]), "peak_rss_mib": rss,
                         "peak_rss_mib_self": j["peak_rss_mib_self"], "wall_s": wall,
                         "config": j["config"], "times_s": j["times_s"]}
                runs[e].append(r)
                if rnd == 0:
                    outputs[e] = np.load(out_path)
        # Several rounds interleave the engines, so a burst of other work hits them alike; each engine
        # keeps its best round (lowest median), the one least disturbed.
        for e in engines:
            best = min(runs[e], key=lambda r: r["median_batch_s"])
            best = dict(best, peak_rss_mib=max(r["peak_rss_mib"] for r in runs[e]),
                        round_medians_s=[r["median_batch_s"] for r in runs[e]])
            best["images_per_s"] = args.batch / best["median_batch_s"]
            results[e] = best
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ref_name = "pytorch" if "pytorch" in outputs else next(iter(outputs))
    ref = outputs[ref_name]
    for e, y in outputs.items():
        if y.shape != ref.shape:
            results[e]["max_rel_err_vs_" + ref_name] = None
            print(f"warning: {e} output shape {y.shape} differs from {ref_name} {ref.shape}")
        else:
            results[e]["max_rel_err_vs_" + ref_name] = max_rel_err(y, ref)
            results[e]["argmax_agrees"] = bool((y.argmax(1) == ref.argmax(1)).all()) if y.ndim == 2 else None

    hp = results.get("histoplan")
    other_cores = None
    if busy0 is not None:
        other_cores = max(0.0, ((cpu_busy_s() - busy0) - (own_cpu_s() - own0)) / (time.perf_counter() - wall0))
    print()
    print(f"other work during the run: {other_cores:.2f} cores on average (of {os.cpu_count()}); "
          f"{'ok' if other_cores < 0.1 else 'CONTENDED: rerun on a quiet machine before recording'}")
    hdr = f"{'engine':<10} {'images/s':>9} {'ms/batch':>9} {'peak RSS MiB':>13} {'histoplan/peer':>15} {'max rel err vs ' + ref_name:>24}"
    print(hdr)
    print("-" * len(hdr))
    for e, r in results.items():
        ratio = (r["images_per_s"] and hp["images_per_s"] / r["images_per_s"]) if hp else None
        r["histoplan_over_peer"] = ratio if e != "histoplan" else None
        err = r.get("max_rel_err_vs_" + ref_name)
        print(f"{e:<10} {r['images_per_s']:>9.2f} {r['median_batch_s'] * 1e3:>9.1f} {r['peak_rss_mib']:>13.1f} "
              f"{'-' if e == 'histoplan' or ratio is None else f'{ratio:.2f}':>15} "
              f"{'-' if e == ref_name else ('n/a' if err is None else f'{err:.2e}'):>24}")
    print()
    print("ratio = histoplan images/s / peer images/s (above 1.0: histoplan is faster). Peak RSS is the "
          "whole child process (for the Python peers it includes the interpreter and the library).")
    for e, r in results.items():
        print(f"  {e}: {r['config']}")

    if args.json:
        doc = {"benchmark": "bench_cpu_densenet", "date": started.isoformat(timespec="seconds"),
               "machine": mach, "git": gs, "model": os.path.relpath(onnx_path, ROOT),
               "batch": args.batch, "rounds": args.rounds, "warmup": args.warmup, "iterations": args.iterations,
               "threads": args.threads, "other_cores_busy": other_cores, "command": " ".join([sys.executable] + sys.argv),
               "results": results}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
