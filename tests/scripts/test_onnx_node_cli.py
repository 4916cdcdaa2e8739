"""Every ONNX node case through the command line, and the supported operators' missing cases
through both the command line and the library.

1. Each case of ONNX's own node tests (Debian's libonnx-testdata, node/; then pytorch-converted/)
   runs as a user runs a
   model: `histoplan model run model.onnx --input NAME=input.npy ... --output NAME=out.npy ...`
   on the cpu and cpu-reference backends (cpu only in the sanitizer build), its inputs converted from the case's .pb files with
   onnx's numpy_helper. Each case is PASSED (exit 0 and every output within the conformance
   harness's tolerances of ONNX's expected output), REFUSED (exit 3: the model was refused at
   load as using an operator, attribute or data type histoplan does not support) or FAILED
   (anything else: another exit status, a crash, a wrong value or shape, a result for a model
   whose output type histoplan cannot produce).
2. tests/conformance/extra_cases.py writes float32, current-opset cases for the supported
   operators whose official cases are refused for reasons unrelated to the operator (opset 1
   GlobalAveragePool and GlobalMaxPool, int32 edge and reflect Pad, integer MaxPool / Clip /
   arithmetic, and the load-time folded Shape, Gather, Cast, ConstantOfShape, Constant chains),
   with expected outputs from NumPy and PyTorch. They run through the command line as above and
   through the library (the conformance harness, --root on the generated folder), and must all
   pass, so that every operator the README lists is exercised by at least one passing case.
3. The harness itself: an engine error whose message contains "unsupported" but whose status is
   not HP_ERR_UNSUPPORTED is a failure, not a refusal.

Prints the counts (passed / refused / failed) per path; fails on any FAILED case.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:  # pragma: no cover
    print(f"skipped: numpy or onnx not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
BUILD = os.environ.get("HP_BUILD_DIR", "build")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
ROOT = os.environ.get("HP_ONNX_TESTDATA", "/usr/share/libonnx-testdata/data")
HARNESS = os.path.join(BUILD, "tests", "conformance", "onnx_conformance")
RTOL, ATOL = 1e-3, 1e-7  # tests/conformance/onnx_conformance.c
EXIT_UNSUPPORTED = 3

SUPPORTED = ("Conv BatchNormalization Relu LeakyRelu PRelu Sigmoid Tanh Clip Add Sub Mul Div MaxPool "
             "AveragePool GlobalAveragePool GlobalMaxPool Concat Flatten Reshape Squeeze Unsqueeze "
             "Identity Dropout Transpose Gemm MatMul Softmax DepthToSpace Resize Upsample Pad Constant "
             "ConstantOfShape Shape Gather Cast").split()


def readme_operators():
    """The operators the README's table lists, so this list cannot drift from it silently."""
    ops = set()
    with open(os.path.join(SRC, "README.md")) as f:
        text = f.read()
    table = text[text.index("## Supported ONNX operators"):]
    table = table[:table.index("\n## ", 5)]
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| Operator") and not line.startswith("|--"):
            ops.update(o.strip() for o in line.split("|")[1].split(","))
    return ops


def compare(got, want):
    """None when got matches want within the tolerances (NaN matches NaN, inf itself)."""
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    both_nan = np.isnan(g) & np.isnan(w)
    inf = np.isinf(g) | np.isinf(w)
    close = np.abs(g - w) <= ATOL + RTOL * np.abs(w)
    ok = both_nan | (inf & (g == w)) | (~inf & close)
    if ok.all():
        return None
    k = int(np.argmin(ok))
    return f"{int((~ok).sum())} of {ok.size} values differ (first at {k}: got {g[k]!r}, want {w[k]!r})"


def case_io(case_dir):
    m = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    return m, ins, list(m.graph.output)


def prepare(case_dir, work):
    """Converts the case's inputs to .npy; returns (args, expected outputs by name, op types)."""
    m, ins, outs = case_io(case_dir)
    data = os.path.join(case_dir, "test_data_set_0")
    args = []
    for k, i in enumerate(ins):
        pb = os.path.join(data, f"input_{k}.pb")
        if not i.type.HasField("tensor_type") or not os.path.exists(pb):
            continue  # a sequence or optional: no .npy can carry it; the model must be refused
        try:
            arr = numpy_helper.to_array(onnx.load_tensor(pb))
        except Exception:  # noqa: BLE001 - a type numpy_helper cannot convert
            continue
        if arr.dtype == object:
            continue
        p = os.path.join(work, f"in{k}.npy")
        np.save(p, arr)
        args += ["--input", f"{i.name}={p}"]
    expected = {}
    for k, o in enumerate(outs):
        pb = os.path.join(data, f"output_{k}.pb")
        p = os.path.join(work, f"out{k}.npy")
        args += ["--output", f"{o.name}={p}"]
        try:
            expected[o.name] = (p, numpy_helper.to_array(onnx.load_tensor(pb)))
        except Exception as e:  # noqa: BLE001
            expected[o.name] = (p, e)
    return args, expected, {n.op_type for n in m.graph.node}


def run_cli(case_dir, backend):
    with tempfile.TemporaryDirectory() as work:
        try:
            args, expected, ops = prepare(case_dir, work)
        except Exception as e:  # noqa: BLE001
            return "FAILED", f"the test could not read the case: {e}", set()
        cmd = [HP_BIN, "model", "run", os.path.join(case_dir, "model.onnx"), "--backend", backend,
               "--threads", "1"] + args
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return "FAILED", "timed out", ops
        err = r.stderr.strip().splitlines()
        last = err[-1] if err else ""
        if r.returncode == EXIT_UNSUPPORTED:
            return "REFUSED", last, ops
        if r.returncode != 0:
            why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
            return "FAILED", f"{why}: {last}", ops
        for name, (path, want) in expected.items():
            if isinstance(want, Exception):
                return "FAILED", f"ran, but output '{name}' has no float reference ({want})", ops
            if want.dtype != np.float32:
                return "FAILED", f"ran a model whose output '{name}' is {want.dtype} (must refuse it)", ops
            if not os.path.exists(path):
                return "FAILED", f"output '{name}' was not written", ops
            why = compare(np.load(path), want)
            if why:
                return "FAILED", f"output '{name}': {why}", ops
        return "PASSED", "", ops


def run_suite(root, label, jobs, suite="node", backends=("cpu", "cpu-reference")):
    node = os.path.join(root, suite)
    cases = sorted(d for d in os.listdir(node)
                   if d.startswith("test_") and os.path.exists(os.path.join(node, d, "model.onnx")))
    results = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = {ex.submit(run_cli, os.path.join(node, c), be): (c, be)
                for c in cases for be in backends}
        for f in concurrent.futures.as_completed(futs):
            results[futs[f]] = f.result()
    counts = {"PASSED": 0, "REFUSED": 0, "FAILED": 0}
    passed_ops = set()
    for c in cases:
        ka, wa, ops = results[(c, backends[0])]
        kb, wb, _ = results[(c, backends[-1])]
        kind, why = ka, wa
        if ka != kb:
            kind, why = "FAILED", f"cpu {ka} ({wa}) but cpu-reference {kb} ({wb})"
        elif ka == "FAILED" and wa != wb:
            why = f"cpu: {wa}; cpu-reference: {wb}"
        counts[kind] += 1
        if kind == "PASSED":
            passed_ops |= ops
        if kind == "FAILED":
            print(f"FAILED  {label}/{c}: {why}")
    print(f"{label} through `histoplan model run` ({' + '.join(backends)}): {len(cases)} cases, "
          f"{counts['PASSED']} passed, {counts['REFUSED']} refused, {counts['FAILED']} failed")
    return counts, passed_ops


def run_harness(root, label):
    r = subprocess.run([HARNESS, "--reference", "--root", root, "-j", "2"], capture_output=True, text=True)
    summary = [l for l in r.stdout.splitlines() if l.startswith("ONNX conformance under")]
    for l in r.stdout.splitlines():
        if l.startswith("FAILED"):
            print(l)
    m = re.search(r"(\d+) tests, (\d+) passed, (\d+) refused, (\d+) failed", summary[0] if summary else "")
    if not m:
        print(f"{label} through the library: no summary (exit {r.returncode}): {r.stdout[-500:]} {r.stderr[-500:]}")
        return None
    print(f"{label} through the library (onnx_conformance --reference): {m.group(1)} cases, "
          f"{m.group(2)} passed, {m.group(3)} refused, {m.group(4)} failed")
    return dict(zip(("tests", "passed", "refused", "failed"), map(int, m.groups()))), r.returncode


def harness_self_check(tmp):
    """A model whose error message says "unsupported" (it is in a node's name) but whose status is
    HP_ERR_INVALID (shapes that do not broadcast): the harness must count it as FAILED."""
    from onnx import TensorProto, helper
    d = os.path.join(tmp, "selfcheck", "node", "test_invalid_named_unsupported")
    os.makedirs(os.path.join(d, "test_data_set_0"))
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"], name="unsupported_looking_name")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [5])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(d, "model.onnx"))
    for k, shape in enumerate(((3, 4), (5,))):
        t = numpy_helper.from_array(np.zeros(shape, np.float32), "xy"[k])
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    t = numpy_helper.from_array(np.zeros((3, 4), np.float32), "z")
    with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(t.SerializeToString())
    r = subprocess.run([HARNESS, "--root", os.path.join(tmp, "selfcheck")], capture_output=True, text=True)
    ok = r.returncode == 1 and "1 failed" in r.stdout and "FAILED  node/test_invalid_named_unsupported" in r.stdout
    print(f"harness self-check (an INVALID error mentioning 'unsupported' is a failure): "
          f"{'ok' if ok else 'WRONG'}")
    if not ok:
        print(r.stdout[-1500:], r.stderr[-500:])
    # The command line says the same with its exit status: 1, not 3.
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, np.zeros((3, 4), np.float32))
    np.save(yp, np.zeros(5, np.float32))
    cli = subprocess.run([HP_BIN, "model", "run", os.path.join(d, "model.onnx"), "--input", "x=" + xp,
                          "--input", "y=" + yp], capture_output=True, text=True)
    cli_ok = cli.returncode == 1
    print(f"command line on the same model: exit {cli.returncode} ({'ok' if cli_ok else 'WRONG'}, 1 expected)")
    return ok and cli_ok


def main():
    if not os.path.isdir(os.path.join(ROOT, "node")):
        print(f"skipped: ONNX test data not found under {ROOT} (Debian's libonnx-testdata)")
        return 77
    jobs = max(1, min(4, os.cpu_count() or 1))
    failed = False
    readme = readme_operators()
    if readme != set(SUPPORTED):
        print(f"the README's operator table and this test differ: README only {sorted(readme - set(SUPPORTED))}, "
              f"test only {sorted(set(SUPPORTED) - readme)}")
        failed = True
    # Under the sanitizers every process starts slowly: the official cases run on the cpu backend
    # only there (onnx_conformance --reference runs them on both, in process, in that build too).
    official_backends = ("cpu",) if os.environ.get("HP_SANITIZE") == "1" else ("cpu", "cpu-reference")
    official, official_ops = run_suite(ROOT, "ONNX node cases", jobs, backends=official_backends)
    failed |= official["FAILED"] > 0
    if os.path.isdir(os.path.join(ROOT, "pytorch-converted")):
        converted, _ = run_suite(ROOT, "ONNX pytorch-converted cases", jobs, "pytorch-converted",
                                 official_backends)
        failed |= converted["FAILED"] > 0
    with tempfile.TemporaryDirectory() as tmp:
        extra_root = os.path.join(tmp, "extra")
        r = subprocess.run(["/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
                            os.path.join(SRC, "tests", "conformance", "extra_cases.py"), extra_root],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"extra_cases.py failed: {r.stderr[-2000:]}")
            return 1
        extra, extra_ops = run_suite(extra_root, "float32 cases for the supported operators", jobs)
        failed |= extra["FAILED"] > 0 or extra["REFUSED"] > 0
        lib = run_harness(extra_root, "float32 cases for the supported operators")
        if lib is None or lib[1] != 0 or lib[0]["failed"] or lib[0]["refused"] or lib[0]["passed"] != extra["PASSED"]:
            print("the library did not pass every generated case")
            failed = True
        failed |= not harness_self_check(tmp)
    missing = sorted(set(SUPPORTED) - (official_ops | extra_ops))
    print(f"supported operators with a passing case through the command line: "
          f"{len(SUPPORTED) - len(missing)} of {len(SUPPORTED)}" + (f"; none for {missing}" if missing else ""))
    failed |= bool(missing)
    passed = official["PASSED"] + extra["PASSED"]
    nfail = official["FAILED"] + extra["FAILED"]
    print(f"{passed} passed, {nfail} failed, {official['REFUSED']} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
