"""Cases for the supported operators that ONNX's own node tests never let histoplan run.

ONNX's official cases for some supported operators are refused for reasons that have nothing to
do with the operator: GlobalAveragePool and GlobalMaxPool exist only at opset 1 (histoplan takes
7 to 18), edge and reflect Pad and the uint8/int8 MaxPool, Clip, Add, Sub, Mul and Div cases use
integer tensors (histoplan runs float32), and Shape, Gather, Cast, ConstantOfShape and Constant
appear only with integer outputs or runtime integer data, while histoplan folds them at load time
in the chains PyTorch exports. This script writes equivalent cases with float32 tensors at a
current opset, in ONNX's test-data layout (node/<case>/model.onnx, test_data_set_0/input_N.pb,
output_N.pb), so that the conformance harness and the command-line test run every supported
operator. Expected outputs come from NumPy and PyTorch, never from histoplan.

Usage: /usr/bin/python3 extra_cases.py OUTDIR   (writes OUTDIR/node/test_*)
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def rng(seed):
    return np.random.default_rng(seed)


def vi(name, arr_or_shape, dtype=TensorProto.FLOAT):
    shape = arr_or_shape.shape if hasattr(arr_or_shape, "shape") else arr_or_shape
    return helper.make_tensor_value_info(name, dtype, list(shape))


def to_proto(a, name):
    """A TensorProto with exactly a's shape (onnx 1.12's from_array gives a 0-d array dims [1])."""
    t = numpy_helper.from_array(np.ascontiguousarray(a), name)
    del t.dims[:]
    t.dims.extend(a.shape)
    return t


def write_case(root, name, nodes, inputs, outputs, initializers=(), opset=OPSET):
    """inputs, outputs: lists of (name, array); the graph declares them with their shapes."""
    graph = helper.make_graph(
        nodes, name,
        [vi(n, a, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]) for n, a in inputs],
        [vi(n, a, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]) for n, a in outputs],
        initializer=[to_proto(a, n) for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="histoplan-extra-cases")
    onnx.checker.check_model(model)
    d = os.path.join(root, "node", "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, items in (("input", inputs), ("output", outputs)):
        for k, (n, a) in enumerate(items):
            t = to_proto(a, n)
            with open(os.path.join(d, "test_data_set_0", f"{kind}_{k}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def f32(a):
    return np.asarray(a, dtype=np.float32)


def global_pools(root):
    x = f32(rng(1).standard_normal((2, 3, 5, 6)))
    pre = f32(np.arange(1, 10).reshape(1, 1, 3, 3))
    for op, fn in (("GlobalAveragePool", np.mean), ("GlobalMaxPool", np.max)):
        base = op.lower()
        for suffix, data in (("", x), ("_precomputed", pre)):
            y = f32(fn(data.astype(np.float64), axis=(2, 3), keepdims=True))
            write_case(root, f"{base}_float{suffix}", [helper.make_node(op, ["x"], ["y"])],
                       [("x", data)], [("y", y)])


def pads(root):
    # The official edge/reflect cases: x [1, 3, 4, 5], pads [0, 0, 1, 1, 0, 0, 1, 1] as an input.
    x = f32(rng(2).standard_normal((1, 3, 4, 5)))
    p = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)
    for mode in ("edge", "reflect"):
        y = f32(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=mode))
        write_case(root, f"{mode}_pad_float", [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)],
                   [("x", x), ("pads", p)], [("y", y)])
    # Uneven pads given as an initializer, as exporters write them.
    q = np.array([0, 0, 2, 1, 0, 0, 1, 3], dtype=np.int64)
    for mode in ("edge", "reflect"):
        y = f32(np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 3)), mode=mode))
        write_case(root, f"{mode}_pad_float_uneven_initializer",
                   [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)],
                   [("x", x)], [("y", y)], initializers=[("pads", q)])


def integer_cases_as_float(root):
    # test_maxpool_2d_uint8: kernel 5x5, pads 2 on [1, 1, 5, 5].
    x = f32(rng(3).uniform(0, 255, (1, 1, 5, 5)))
    y = torch.nn.functional.max_pool2d(torch.from_numpy(x), 5, stride=1, padding=2).numpy()
    write_case(root, "maxpool_2d_float_from_uint8",
               [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[5, 5], pads=[2, 2, 2, 2])],
               [("x", x)], [("y", f32(y))], opset=12)
    # test_clip_default_int8_{min,max,inbounds}: Clip with one bound given as an input.
    x = f32(rng(4).integers(-5, 5, (3, 4, 5)))
    for name, bound_name, bound, ref in (
            ("min", "min", f32(0), lambda a: np.maximum(a, 0)),
            ("max", "", f32(0), lambda a: np.minimum(a, 0))):
        ins = ["x", "min"] if bound_name else ["x", "", "max"]
        write_case(root, f"clip_default_float_{name}_from_int8", [helper.make_node("Clip", ins, ["y"])],
                   [("x", x), ("min" if bound_name else "max", bound)], [("y", f32(ref(x)))])
    write_case(root, "clip_default_float_inbounds_from_int8", [helper.make_node("Clip", ["x"], ["y"])],
               [("x", x)], [("y", x.copy())])
    # test_{add,sub,mul,div}_uint8: elementwise on [3, 4, 5] (division by values away from zero).
    a = f32(rng(5).uniform(0, 24, (3, 4, 5)))
    b = f32(rng(6).uniform(1, 24, (3, 4, 5)))
    for op, fn in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply), ("Div", np.divide)):
        write_case(root, f"{op.lower()}_float_from_uint8", [helper.make_node(op, ["x", "y"], ["z"])],
                   [("x", a), ("y", b)], [("z", f32(fn(a.astype(np.float64), b.astype(np.float64))))],
                   opset=14)


def folded_chains(root):
    """Shape, Gather, Unsqueeze, Concat, Constant, Cast and ConstantOfShape as PyTorch uses
    them around flatten and reshape: folded to constants at load, around float runtime data."""
    x = f32(rng(7).standard_normal((2, 3, 4, 5)))
    # torch.flatten(x, 1) as exported: Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    write_case(root, "shape_gather_concat_reshape_chain", nodes, [("x", x)], [("y", x.reshape(2, -1))])
    # Cast of a folded shape to float, then used as data: x * float(shape(x)).
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "sf"], ["y"])]
    x2 = f32(rng(8).standard_normal((2, 3, 5, 4)))
    y = f32(x2.astype(np.float64) * np.array(x2.shape, dtype=np.float64))
    write_case(root, "shape_cast_float_mul", nodes, [("x", x2)], [("y", y)])
    # Cast float to float on runtime data.
    write_case(root, "cast_float_to_float_runtime",
               [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], [("x", x)], [("y", x.copy())])
    # ConstantOfShape(shape(x), 1.5) + x.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"],
                              value=numpy_helper.from_array(np.array([1.5], np.float32))),
             helper.make_node("Add", ["x", "c"], ["y"])]
    write_case(root, "shape_constantofshape_add", nodes, [("x", x)], [("y", f32(x + np.float32(1.5)))])
    # Gather on constant float data with constant indices, added to runtime data.
    table = f32([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    idx = np.array([5, 0, 3, 1, 2], dtype=np.int64)
    nodes = [helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(table)),
             helper.make_node("Constant", [], ["i"], value=numpy_helper.from_array(idx)),
             helper.make_node("Gather", ["t", "i"], ["g"], axis=0),
             helper.make_node("Add", ["x", "g"], ["y"])]
    write_case(root, "constant_gather_add", nodes, [("x", x)], [("y", f32(x + table[idx]))])


def symbolic_dims(root):
    """A fully convolutional net exported with symbolic height and width: the harness gives the
    test data's sizes (hp_model_set_input_shape), the command line the .npy's."""
    # Small integers, as ONNX's own Conv cases use: every sum is exact in float32, so the
    # harness's tolerance (1e-7 absolute near zero) compares values, not summation order.
    r = rng(9)
    x = f32(r.integers(-4, 5, (2, 3, 9, 13)))
    w = f32(r.integers(-2, 3, (4, 3, 3, 3)))
    b = f32(r.integers(-3, 4, 4))
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy()
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])], "conv_symbolic_hw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "height", "width"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, "height", "width"])],
        initializer=[to_proto(w, "w"), to_proto(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    d = os.path.join(root, "node", "test_conv_symbolic_height_width")
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, name, a in (("input", "x", x), ("output", "y", f32(y))):
        with open(os.path.join(d, "test_data_set_0", f"{kind}_0.pb"), "wb") as f:
            f.write(to_proto(a, name).SerializeToString())


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    global_pools(root)
    pads(root)
    integer_cases_as_float(root)
    folded_chains(root)
    symbolic_dims(root)
    n = len(os.listdir(os.path.join(root, "node")))
    print(f"{n} cases written under {root}/node")
    return 0


if __name__ == "__main__":
    sys.exit(main())
