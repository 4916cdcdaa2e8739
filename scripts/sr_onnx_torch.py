"""The PyTorch peer of an ONNX super-resolution model: a torch.nn.Module that runs the ONNX file's
graph node by node with PyTorch's own operators and the file's initializers as its weights.

Used by benchmarks/bench_superres.py (the PyTorch side of the benchmark) and by
tests/scripts/test_sr_zoo.py (the reference histoplan's output is compared with), so both compare
histoplan with the same network and the same weights read from the same file, not with the weights
the trainer happened to keep. Operators: the ones the zoo's SR models use (Conv, PRelu, Relu,
LeakyRelu, Tanh, Sigmoid, DepthToSpace, Resize, Add, Mul, Constant, Identity); anything else is
refused by name.
"""
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxSR(torch.nn.Module):
    """storage: None (float32 throughout), or torch.float16 / torch.bfloat16 to round the weights,
    the input and every node's output through that type while computing in float32: what a GPU
    backend that stores tensors in half precision and accumulates in float32 does (an estimate of
    its error on a machine without one)."""

    def __init__(self, path, storage=None):
        super().__init__()
        self.storage = storage
        m = onnx.load(path)
        self.nodes = list(m.graph.node)
        self.input_name = m.graph.input[0].name
        self.output_name = m.graph.output[0].name
        self.consts = {}
        for i, init in enumerate(m.graph.initializer):
            t = torch.from_numpy(numpy_helper.to_array(init).copy())
            name = f"w{i}"
            if t.is_floating_point():
                self.register_buffer(name, self._round(t))
            self.consts[init.name] = name if t.is_floating_point() else t
        for n in self.nodes:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = torch.from_numpy(numpy_helper.to_array(_attrs(n)["value"]).copy())
        supported = {"Conv", "PRelu", "Relu", "LeakyRelu", "Tanh", "Sigmoid", "DepthToSpace", "Resize", "Add", "Mul",
                     "Constant", "Identity"}
        bad = sorted({n.op_type for n in self.nodes} - supported)
        if bad:
            raise ValueError(f"{path}: operators without a PyTorch mapping here: {', '.join(bad)}")

    def _round(self, t):
        return t if self.storage is None else t.to(self.storage).float()

    def _get(self, env, name):
        if name in env:
            return env[name]
        c = self.consts[name]
        return getattr(self, c) if isinstance(c, str) else c

    def forward(self, x):
        env = {self.input_name: self._round(x)}
        for n in self.nodes:
            op, a = n.op_type, _attrs(n)
            if op == "Constant":
                continue
            ins = [self._get(env, i) if i else None for i in n.input]
            if op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    raise ValueError("asymmetric Conv padding")
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]),
                             padding=pads[:2], dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
            elif op == "PRelu":
                s = ins[1]
                if s.dim() >= 1 and s.numel() == ins[0].shape[1]:
                    y = F.prelu(ins[0], s.reshape(-1))
                else:
                    y = torch.where(ins[0] >= 0, ins[0], ins[0] * s)
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "LeakyRelu":
                y = F.leaky_relu(ins[0], a.get("alpha", 0.01))
            elif op == "Tanh":
                y = torch.tanh(ins[0])
            elif op == "Sigmoid":
                y = torch.sigmoid(ins[0])
            elif op == "DepthToSpace":
                if a.get("mode", b"DCR") not in (b"CRD", "CRD"):
                    raise ValueError("DepthToSpace mode DCR is not mapped")
                y = F.pixel_shuffle(ins[0], a["blocksize"])
            elif op == "Resize":
                mode = a.get("mode", b"nearest")
                mode = mode.decode() if isinstance(mode, bytes) else mode
                ctm = a.get("coordinate_transformation_mode", b"half_pixel")
                ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
                scales = ins[2] if len(ins) > 2 and ins[2] is not None and ins[2].numel() else None
                if scales is None:
                    raise ValueError("Resize by sizes is not mapped")
                sf = [float(v) for v in scales[2:]]
                if mode == "linear":
                    if ctm not in ("half_pixel", "pytorch_half_pixel"):
                        raise ValueError(f"Resize linear with {ctm}")
                    y = F.interpolate(ins[0], scale_factor=sf, mode="bilinear", align_corners=False)
                elif mode == "nearest":
                    y = F.interpolate(ins[0], scale_factor=sf, mode="nearest")
                else:
                    raise ValueError(f"Resize mode {mode}")
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Identity":
                y = ins[0]
            env[n.output[0]] = self._round(y)
        return env[self.output_name]


def load(path, storage=None):
    """The module for the ONNX file at path, in eval mode (storage: see OnnxSR)."""
    return OnnxSR(path, storage).eval()


def run(net, x):
    """x: float32 numpy [N, 3, H, W]; returns the float32 numpy output."""
    with torch.inference_mode():
        return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
