#!/usr/bin/python3
"""CPU side-by-side benchmark of the zoo's super-resolution models: histoplan's engine against
PyTorch and OpenCV's dnn module, in output megapixels per second.

All three run the same ONNX file's network with the same weights on the same input in the same run:
  histoplan  `histoplan model bench M.onnx --input input=X.npy --backend cpu --threads T --json`
             (the engine alone: the input tensor is read once, no image decoding or TIFF writing;
             `histoplan upscale` adds those, and eval-superres.py measures that path's quality)
  pytorch    scripts/sr_onnx_torch.py: a torch module that runs the ONNX graph with PyTorch's
             operators and the file's initializers as weights; torch.set_num_threads(T),
             torch.inference_mode()
  opencv     cv2.dnn.readNetFromONNX on the same file with its input declared at the benchmark's
             fixed shape (OpenCV 4.6 cannot import DepthToSpace behind symbolic height and width;
             the graph and weights are unchanged), DNN_BACKEND_OPENCV / DNN_TARGET_CPU.
             OpenCV's dnn_superres module is not a peer here: it loads only its own TensorFlow .pb
             models (EDSR, ESPCN, FSRCNN, LapSRN), which are not available offline, not our ONNX files.

The input is a real H&E region (the TCGA-HE-7130 holdout image of scripts/train-superres.py, a
--size x --size crop, RGB in 0..1), batch 1. Each engine runs in its own child process, does the
same warm-up runs and reports the median of the same number of timed runs. Before timing, each
engine's output is compared with PyTorch's (max relative error), so the figures are for the same
computation. This is a benchmark, not a test: it asserts nothing about speed.

usage: /usr/bin/python3 benchmarks/bench_superres.py [--models srvgg-x2,espcn-x2] [--size 512]
           [--iterations 5] [--warmup 2] [--threads 2] [--json out.json]
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_cpu_densenet as B  # noqa: E402  (machine(), git_state(), run_child(), ...)


def static_copy(path, shape, out_path):
    """The same ONNX graph and weights with the input declared at a fixed shape (for OpenCV)."""
    import onnx
    m = onnx.load(path)
    for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = v
    for d in m.graph.output[0].type.tensor_type.shape.dim:
        d.ClearField("dim_param")
        d.ClearField("dim_value")
    onnx.save(m, out_path)


def child_main(engine, spec):
    import numpy as np
    x = np.load(spec["input"])
    threads = spec["threads"]
    out = {"engine": engine}
    if engine == "pytorch":
        import torch
        import sr_onnx_torch
        torch.set_num_threads(threads)
        net = sr_onnx_torch.load(spec["model"])
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            np.save(spec["output"], net(xt).numpy())
            times = B._time_loop(lambda: net(xt), spec["warmup"], spec["iterations"])
        out["config"] = f"torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}, {threads} threads"
    elif engine == "opencv":
        times, cv2 = B._opencv_time(spec["static_model"], x, threads, spec["output"], spec["warmup"],
                                    spec["iterations"])
        out["config"] = f"OpenCV {cv2.__version__} dnn, {cv2.getNumThreads()} threads"
    else:
        raise SystemExit(f"unknown engine {engine}")
    out["times_s"] = times
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="srvgg-x2,espcn-x2", help="zoo models histoplan-sr-<NAME>")
    ap.add_argument("--size", type=int, default=512, help="input side in pixels (default 512)")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="histoplan,pytorch,opencv")
    ap.add_argument("--zoo", default=os.path.join(ROOT, "models", "zoo"))
    ap.add_argument("--histoplan", default=os.path.join(ROOT, "build", "histoplan"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-spec", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child_main(a.child, json.loads(a.child_spec))

    import numpy as np
    from PIL import Image
    engines = [e for e in a.engines.split(",") if e]
    started = datetime.datetime.now().astimezone()
    mach, gs = B.machine(), B.git_state()
    print(f"date     {started.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine  {mach['cpu']}, {mach['cores']} cores ({' '.join(mach['isa'])}), {mach['ram_gib']} GiB RAM")
    print(f"histoplan commit {gs['commit']}")
    img = Image.open(os.path.join(a.shared, "data", "real", "patches", "TCGA-HE-7130-01Z-00-DX1_region_1000px.png"))
    rgb = np.asarray(img.convert("RGB"))[:a.size, :a.size]
    x = (rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    print(f"input    [1, 3, {a.size}, {a.size}] real H&E (TCGA-HE-7130 region), {a.threads} threads per engine, "
          f"{a.warmup} warm-up + median of {a.iterations} runs, each engine in its own process")
    busy0, own0, wall0 = B.cpu_busy_s(), B.own_cpu_s(), time.perf_counter()
    doc = {"benchmark": "bench_superres", "date": started.isoformat(timespec="seconds"), "machine": mach,
           "git": gs, "size": a.size, "threads": a.threads, "iterations": a.iterations, "warmup": a.warmup,
           "command": " ".join([sys.executable] + sys.argv), "models": {}}
    with tempfile.TemporaryDirectory(prefix="hp-bench-sr-") as work:
        in_path = os.path.join(work, "input.npy")
        np.save(in_path, x)
        for short in [m for m in a.models.split(",") if m]:
            name = f"histoplan-sr-{short}"
            model = os.path.join(a.zoo, name + ".onnx")
            scale = json.load(open(model[:-5] + ".card.json"))["scale"]
            out_mp = (a.size * scale) ** 2 / 1e6
            static = os.path.join(work, name + ".static.onnx")
            static_copy(model, x.shape, static)
            res, outs = {}, {}
            for e in engines:
                out_path = os.path.join(work, f"{name}.{e}.npy")
                if e == "histoplan":
                    so, se, rc, _, _ = B.run_child([a.histoplan, "model", "run", model, "--input", in_path,
                                                    "--output", out_path, "--threads", str(a.threads)])
                    if rc:
                        raise SystemExit(f"histoplan model run failed: {se.strip()}")
                    cmd = [a.histoplan, "model", "bench", model, "--input", f"input={in_path}", "--backend", "cpu",
                           "--threads", str(a.threads), "--iterations", str(a.iterations), "--warmup",
                           str(a.warmup), "--json"]
                    so, se, rc, _, rss = B.run_child(cmd)
                    if rc:
                        raise SystemExit(f"histoplan model bench failed: {se.strip()}")
                    j = B.last_json(so)
                    r = {"median_s": j["median_batch_s"], "config": f"histoplan CPU backend, {a.threads} threads"}
                else:
                    spec = {"input": in_path, "output": out_path, "model": model, "static_model": static,
                            "threads": a.threads, "warmup": a.warmup, "iterations": a.iterations}
                    so, se, rc, _, rss = B.run_child([sys.executable, os.path.abspath(__file__), "--child", e,
                                                      "--child-spec", json.dumps(spec)])
                    if rc:
                        print(f"warning: {e} failed on {name}: {se.strip()[-400:]}")
                        continue
                    j = B.last_json(so)
                    r = {"median_s": statistics.median(j["times_s"]), "times_s": j["times_s"], "config": j["config"]}
                r["output_mpix_per_s"] = out_mp / r["median_s"]
                r["peak_rss_mib"] = rss
                res[e] = r
                outs[e] = np.load(out_path)
            ref = outs.get("pytorch")
            for e, y in outs.items():
                res[e]["max_rel_err_vs_pytorch"] = None if ref is None or e == "pytorch" else B.max_rel_err(y, ref)
            hp = res.get("histoplan")
            for e, r in res.items():
                r["histoplan_over_peer"] = hp["output_mpix_per_s"] / r["output_mpix_per_s"] if hp and e != "histoplan" else None
            doc["models"][name] = {"scale": scale, "output_mpix": out_mp, "results": res}
    other = None
    if busy0 is not None:
        other = max(0.0, ((B.cpu_busy_s() - busy0) - (B.own_cpu_s() - own0)) / (time.perf_counter() - wall0))
        doc["other_cores_busy"] = other
        print(f"other work during the run: {other:.2f} cores on average "
              f"({'ok' if other < 0.1 else 'CONTENDED: rerun on a quiet machine before recording'})")
    print()
    print("| model | engine | output MP/s | ms per run | histoplan / engine | max rel err vs PyTorch |")
    print("|---|---|---|---|---|---|")
    for name, m in doc["models"].items():
        for e, r in m["results"].items():
            ratio = r["histoplan_over_peer"]
            err = r["max_rel_err_vs_pytorch"]
            print(f"| {name} | {e} | {r['output_mpix_per_s']:.2f} | {r['median_s'] * 1e3:.0f} | "
                  f"{'-' if ratio is None else f'{ratio:.2f}'} | {'-' if err is None else f'{err:.1e}'} |")
    for name, m in doc["models"].items():
        for e, r in m["results"].items():
            print(f"  {name} {e}: {r['config']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    sys.exit(main())
