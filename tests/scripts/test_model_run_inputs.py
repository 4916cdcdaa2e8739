"""`histoplan model run` and `model bench` on inputs as models declare them.

Models are built here with onnx's helper; expected values come from NumPy. Checked through the
command line on both CPU backends:
- inputs of any rank: [3, 4, 5], a symbolic first dimension [N, 4] (N taken from the .npy) and
  symbolic height and width [N, 3, H, W] (a Conv checked against PyTorch at two sizes);
- Flatten with axis 3 / -1 on [2, 3, 4, 5] (the first output dimension is not the batch): ran off
  the end of the output buffer before;
- several inputs: by name in any order, or plain in declaration order; refused with exit 2 and
  the input named: one missing, an unknown name, a name twice, plain and named mixed, a plain
  --input repeated for a one-input model, batch sizes that disagree; a wrong shape exits 1;
- a parameter input (a Reshape's int64 shape; int32 .npy accepted) bound from its .npy;
- bench builds inputs of the declared shape (fixed shapes: --batch refused) and asks for
  parameter inputs;
- images: exactly the input size runs; any other size is refused with --mpp and cropping named
  (never squashed); with --mpp it is resampled to the card's MPP and cut into input-sized tiles,
  each reported, whose outputs equal runs on the same tiles cut by hand; an image for a
  non-image input is refused;
- --precision fp16/bf16 with a CPU backend refused (exit 2), never labelled and run as fp32;
- a model refused at load for an unsupported operator exits 3.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: numpy, onnx or PIL not available ({e})")
    sys.exit(77)

HP_BIN = os.path.abspath(os.environ["HP_BIN"]) if os.environ.get("HP_BIN") else "histoplan"
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO = os.path.join(SRC, "models", "zoo", "histoplan-demo-densenet.onnx")
BACKENDS = ("cpu", "cpu-reference")

passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}" + (f"\n     {detail}" if detail else ""))


def hp(*args):
    return subprocess.run([HP_BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def model(path, nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def tvi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def npy(tmp, name, a):
    p = os.path.join(tmp, name)
    np.save(p, a)
    return p


def run_ok(what, args, out, want, rtol=1e-6, atol=1e-6):
    for be in BACKENDS:
        r = hp("model", "run", *args, "--output", out, "--backend", be)
        ok = r.returncode == 0 and os.path.exists(out)
        got = np.load(out) if ok else None
        ok = ok and got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol)
        check(ok, f"{what} ({be})",
              f"exit {r.returncode}: {r.stderr.strip()[-300:]}" + (f" shape {got.shape} vs {want.shape}" if got is not None else ""))
        if os.path.exists(out):
            os.remove(out)


def refused(what, args, rc, needles, cmd="run"):
    r = hp("model", cmd, *args)
    msg = r.stderr
    ok = r.returncode == rc and all(n in msg for n in needles)
    check(ok, what, f"exit {r.returncode} (want {rc}): {msg.strip()[-400:]}")


def tensors(tmp):
    rng = np.random.default_rng(1)
    out = os.path.join(tmp, "y.npy")
    # Rank 3, fixed: Sigmoid on [3, 4, 5].
    m3 = model(os.path.join(tmp, "rank3.onnx"), [helper.make_node("Sigmoid", ["x"], ["y"])],
               [tvi("x", [3, 4, 5])], [tvi("y", [3, 4, 5])])
    x3 = rng.standard_normal((3, 4, 5)).astype(np.float32)
    run_ok("rank-3 input [3, 4, 5]", [m3, "--input", npy(tmp, "x3.npy", x3)], out, 1 / (1 + np.exp(-x3.astype(np.float64))))
    refused("rank-3 input given a 4-D .npy", [m3, "--input", npy(tmp, "x3b.npy", x3[None])], 1,
            ["[1, 3, 4, 5]", "'x' [3, 4, 5]"])
    # Symbolic first dimension.
    mn = model(os.path.join(tmp, "batch.onnx"), [helper.make_node("Relu", ["x"], ["y"])],
               [tvi("x", ["n", 4])], [tvi("y", ["n", 4])])
    xn = rng.standard_normal((7, 4)).astype(np.float32)
    run_ok("symbolic batch [N, 4] with 7 items", [mn, "--input", npy(tmp, "xn.npy", xn)], out, np.maximum(xn, 0))
    # Flatten whose output's first dim is not the batch.
    xf = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    for axis in (3, -1, 2, 0):
        mf = model(os.path.join(tmp, f"flatten{axis}.onnx"), [helper.make_node("Flatten", ["x"], ["y"], axis=axis)],
                   [tvi("x", [2, 3, 4, 5])], [tvi("y", None)])
        a = axis % 4
        want = xf.reshape(int(np.prod(xf.shape[:a])), -1)
        run_ok(f"Flatten axis {axis} on [2, 3, 4, 5]", [mf, "--input", npy(tmp, "xf.npy", xf)], out, want)
    mfs = model(os.path.join(tmp, "flatten_sym.onnx"), [helper.make_node("Flatten", ["x"], ["y"], axis=3)],
                [tvi("x", ["n", 3, 4, 5])], [tvi("y", None)])
    run_ok("Flatten axis 3 on [N, 3, 4, 5], N = 2", [mfs, "--input", npy(tmp, "xf.npy", xf)], out, xf.reshape(24, 5))

    # Symbolic height and width (a fully convolutional export): the .npy's sizes, two of them.
    import torch
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    mc = model(os.path.join(tmp, "fcn.onnx"), [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
               [tvi("x", ["n", 3, "height", "width"])], [tvi("y", ["n", 2, "height", "width"])],
               inits=[("w", w), ("b", bias)])
    for shape in ((2, 3, 17, 23), (1, 3, 8, 40)):
        xc = rng.standard_normal(shape).astype(np.float32)
        want = torch.nn.functional.conv2d(torch.from_numpy(xc), torch.from_numpy(w), torch.from_numpy(bias), padding=1).numpy()
        run_ok(f"symbolic height and width, {list(shape)}", [mc, "--input", npy(tmp, "xc.npy", xc)], out, want,
               rtol=1e-4, atol=1e-5)
    refused("symbolic height and width given a 3-D .npy", [mc, "--input", npy(tmp, "xc3.npy", np.zeros((3, 8, 8), np.float32))],
            1, ["[3, 8, 8]", "[N, 3, ?, ?]"])
    refused("bench with symbolic height and width and no example", [mc, "--iterations", "1"], 2,
            ["symbolic dims other than the batch", "--input x=FILE.npy"], cmd="bench")
    r = hp("model", "bench", mc, "--input", f"x={npy(tmp, 'xc.npy', np.zeros((4, 3, 16, 16), np.float32))}",
           "--iterations", "2", "--warmup", "0", "--json")
    check(r.returncode == 0 and '"batch":4' in r.stdout, "bench with an example of the shape", r.stderr.strip()[-300:])
    r = hp("model", "info", mc)
    check(r.returncode == 0 and "--input x=FILE.npy" in r.stdout, "info asks for an example of the shape", r.stdout[-300:])
    r = hp("model", "info", mc, "--input", f"x={npy(tmp, 'xc.npy', np.zeros((1, 3, 64, 64), np.float32))}")
    check(r.returncode == 0 and "planned peak activation memory" in r.stdout, "info plans with an example of the shape",
          r.stderr[-300:])

    # Two inputs: Sub is not symmetric, so a swap shows.
    ms = model(os.path.join(tmp, "sub.onnx"), [helper.make_node("Sub", ["a", "b"], ["y"])],
               [tvi("a", ["n", 4]), tvi("b", ["n", 4])], [tvi("y", ["n", 4])])
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    pa, pb = npy(tmp, "a.npy", a), npy(tmp, "b.npy", b)
    run_ok("two inputs by name, given in reverse order", [ms, "--input", f"b={pb}", "--input", f"a={pa}"], out, a - b)
    run_ok("two inputs in declaration order", [ms, "--input", pa, "--input", pb], out, a - b)
    refused("one of two inputs missing", [ms, "--input", f"a={pa}"], 2, ["'b'", "b=FILE"])
    refused("plain and named mixed", [ms, "--input", pa, "--input", f"b={pb}"], 2, ["NAME=FILE"])
    refused("an unknown input name", [ms, "--input", f"c={pa}", "--input", f"b={pb}"], 2, ["no input named 'c'", "'a', 'b'"])
    refused("the same input twice", [ms, "--input", f"a={pa}", "--input", f"a={pb}"], 2, ["'a' is given twice"])
    refused("more plain inputs than the model has", [ms, "--input", pa, "--input", pb, "--input", pa], 2,
            ["given 3 times", "2 inputs"])
    refused("batch sizes that disagree", [ms, "--input", pa, "--input", npy(tmp, "b5.npy", np.zeros((5, 4), np.float32))],
            1, ["batch sizes of the inputs differ"])
    refused("a repeated plain --input on a one-input model", [m3, "--input", npy(tmp, "x3.npy", x3), "--input",
                                                                npy(tmp, "x3c.npy", x3 * 2)], 2, ["given 2 times", "1 input"])
    # NAME=FILE that is also an existing file: ambiguous.
    amb = os.path.join(tmp, "a=x.npy")
    np.save(amb, a)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        refused("an --input that is both NAME=FILE and a file", [ms, "--input", "a=x.npy", "--input", f"b={pb}"], 2,
                ["ambiguous"])
    finally:
        os.chdir(cwd)

    # A parameter input: Reshape's shape, from an int64 and from an int32 .npy.
    mr = model(os.path.join(tmp, "reshape.onnx"), [helper.make_node("Reshape", ["x", "shape"], ["y"])],
               [tvi("x", [2, 3, 4]), tvi("shape", [3], TensorProto.INT64)], [tvi("y", None)])
    xr = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for dt in (np.int64, np.int32):
        run_ok(f"Reshape with its shape from a {np.dtype(dt).name} .npy",
               [mr, "--input", f"x={npy(tmp, 'xr.npy', xr)}", "--input",
                f"shape={npy(tmp, 'sh.npy', np.array([4, 3, 2], dt))}"], out, xr.reshape(4, 3, 2))
    refused("Reshape with a float .npy for its int64 shape",
            [mr, "--input", f"x={npy(tmp, 'xr.npy', xr)}", "--input", f"shape={npy(tmp, 'shf.npy', np.array([4., 3, 2], np.float32))}"],
            1, ["not an integer type"])

    # Several outputs: each to its own file, by name.
    m2 = model(os.path.join(tmp, "two_out.onnx"),
               [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"])],
               [tvi("x", [3, 4, 5])], [tvi("r", [3, 4, 5]), tvi("s", [3, 4, 5])])
    ps, pr = os.path.join(tmp, "s.npy"), os.path.join(tmp, "r.npy")
    r = hp("model", "run", m2, "--input", npy(tmp, "x3.npy", x3), "--output", f"s={ps}", "--output", f"r={pr}")
    ok = r.returncode == 0 and np.allclose(np.load(ps), 1 / (1 + np.exp(-x3.astype(np.float64))), atol=1e-6) and \
        np.allclose(np.load(pr), np.maximum(x3, 0))
    check(ok, "two outputs written by name", r.stderr.strip()[-300:])
    refused("an unknown output name", [m2, "--input", npy(tmp, "x3.npy", x3), "--output", f"q={ps}"], 2,
            ["no output named 'q'"])

    # bench: inputs of the declared shape.
    r = hp("model", "bench", m3, "--iterations", "2", "--warmup", "0", "--json")
    check(r.returncode == 0 and '"batch":3' in r.stdout, "bench on a fixed [3, 4, 5] input", r.stderr.strip()[-300:])
    refused("bench --batch on fixed shapes", [m3, "--batch", "4", "--iterations", "1"], 2, ["fixed shapes"], cmd="bench")
    r = hp("model", "bench", ms, "--batch", "5", "--iterations", "2", "--warmup", "0", "--json")
    check(r.returncode == 0 and '"batch":5' in r.stdout, "bench on two [N, 4] inputs at --batch 5", r.stderr.strip()[-300:])
    refused("bench without a parameter input", [mr, "--iterations", "1"], 2, ["'shape' is a parameter"], cmd="bench")
    r = hp("model", "bench", mr, "--input", f"shape={npy(tmp, 'sh.npy', np.array([4, 3, 2], np.int64))}",
           "--iterations", "2", "--warmup", "0")
    check(r.returncode == 0 and "items/s" in r.stdout, "bench with a parameter input given", r.stderr.strip()[-300:])

    # Refused at load: an operator histoplan does not run exits 3.
    mu = model(os.path.join(tmp, "unsupported.onnx"), [helper.make_node("Erf", ["x"], ["y"])],
               [tvi("x", [3, 4, 5])], [tvi("y", [3, 4, 5])])
    refused("an unsupported operator exits 3", [mu, "--input", npy(tmp, "x3.npy", x3)], 3, ["Erf"])


def precision(tmp):
    x = np.zeros((1, 3, 224, 224), np.float32)
    p = npy(tmp, "img.npy", x)
    for prec in ("fp16", "bf16"):
        for be in BACKENDS:
            refused(f"--precision {prec} with --backend {be}", [DEMO, "--input", p, "--precision", prec, "--backend", be],
                    2, [f"--precision {prec} needs --backend cuda"])
        refused(f"bench --precision {prec} on the CPU", [DEMO, "--precision", prec, "--iterations", "1"], 2,
                ["needs --backend cuda"], cmd="bench")


def images(tmp):
    rng = np.random.default_rng(2)
    # A textured RGB image 2.5 tiles wide and 2.2 tiles high at the card's 0.5 um/px.
    img = rng.integers(0, 256, (493, 560, 3), dtype=np.uint8)
    big = os.path.join(tmp, "big.png")
    Image.fromarray(img).save(big)
    exact = os.path.join(tmp, "exact.png")
    Image.fromarray(img[:224, :224]).save(exact)
    out = os.path.join(tmp, "y.npy")
    r = hp("model", "run", DEMO, "--input", exact, "--output", out)
    check(r.returncode == 0 and np.load(out).shape == (1, 4), "an image of exactly the input size", r.stderr.strip()[-300:])
    refused("an image of another size without --mpp (never squashed)", [DEMO, "--input", big], 2,
            ["560x493", "224x224", "--mpp", "crop"])
    # --mpp at the card's MPP: no resampling, 2 x 2 tiles, each the same as a hand-cut tile.
    r = hp("model", "run", DEMO, "--input", big, "--mpp", "0.5", "--output", out)
    ok = r.returncode == 0
    tiles = np.load(out) if ok else None
    check(ok and tiles.shape == (4, 4), "--mpp 0.5 (the card's): 2 x 2 tiles of 224 x 224, one output row each",
          r.stderr.strip()[-300:] + (f" shape {tiles.shape}" if tiles is not None else ""))
    check(ok and "tile 3 at x=224 y=224" in r.stdout, "each tile reported with its position", r.stdout[-400:])
    if ok:
        for t, (ty, tx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            p = os.path.join(tmp, f"tile{t}.png")
            Image.fromarray(img[ty * 224:(ty + 1) * 224, tx * 224:(tx + 1) * 224]).save(p)
            r = hp("model", "run", DEMO, "--input", p, "--output", out)
            one = np.load(out) if r.returncode == 0 else None
            check(one is not None and np.allclose(one[0], tiles[t], rtol=1e-5, atol=1e-5),
                  f"tile {t} equals a run on the same 224 x 224 cut by hand")
    # 36 tiles: more than one batch of tiles (32), the last batch smaller.
    many = rng.integers(0, 256, (6 * 224, 6 * 224, 3), dtype=np.uint8)
    pm = os.path.join(tmp, "many.png")
    Image.fromarray(many).save(pm)
    r = hp("model", "run", DEMO, "--input", pm, "--mpp", "0.5", "--output", out)
    ok = r.returncode == 0
    tiles = np.load(out) if ok else None
    check(ok and tiles.shape == (36, 4), "36 tiles in batches of 32 and 4: one output row each",
          r.stderr.strip()[-300:] + (f" shape {tiles.shape}" if tiles is not None else ""))
    if ok:
        for t in (0, 31, 32, 35):
            ty, tx = divmod(t, 6)
            p = os.path.join(tmp, f"mtile{t}.png")
            Image.fromarray(many[ty * 224:(ty + 1) * 224, tx * 224:(tx + 1) * 224]).save(p)
            r = hp("model", "run", DEMO, "--input", p, "--output", out)
            one = np.load(out) if r.returncode == 0 else None
            check(one is not None and np.allclose(one[0], tiles[t], rtol=1e-5, atol=1e-5),
                  f"tile {t} of 36 equals a run on the same 224 x 224 cut by hand")
    # --mpp 0.25: the image is halved to 280 x 246 at 0.5 um/px: one tile.
    r = hp("model", "run", DEMO, "--input", big, "--mpp", "0.25", "--output", out)
    check(r.returncode == 0 and np.load(out).shape == (1, 4) and "resampled" in r.stdout,
          "--mpp 0.25: resampled to the card's MPP, then one tile", r.stderr.strip()[-300:] + r.stdout[-300:])
    refused("--mpp that leaves less than one tile", [DEMO, "--input", big, "--mpp", "0.1"], 1, ["smaller than one 224x224"])
    # An image for a model whose input is not [N, 3, H, W].
    m3 = model(os.path.join(tmp, "rank3i.onnx"), [helper.make_node("Sigmoid", ["x"], ["y"])],
               [tvi("x", [3, 4, 5])], [tvi("y", [3, 4, 5])])
    refused("an image for a [3, 4, 5] input", [m3, "--input", exact], 1, ["not an image input"])
    refused("--mpp with a .npy", [m3, "--input", npy(tmp, "x3.npy", np.zeros((3, 4, 5), np.float32)), "--mpp", "0.5"],
            2, ["--mpp applies to an image"])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tensors(tmp)
        precision(tmp)
        images(tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
