"""Model file variants a researcher's export may produce, each checked against PyTorch at test
time: weights in an external data file beside the model, float16 and bfloat16 weights (compared
with PyTorch running the same rounded weights), and a later opset (onnx's version converter in Debian's onnx 1.12 reaches 17)."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import torch
    import onnx.version_converter
    from onnx import numpy_helper
except ImportError as e:  # pragma: no cover
    print(f"skipped: PyTorch or onnx not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.f = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))

    def forward(self, x):
        return self.f(x)


def run_hp(model_path, x, tmp):
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, x)
    r = subprocess.run([HP_BIN, "model", "run", model_path, "--input", xp, "--output", yp],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"histoplan exited {r.returncode}: {r.stderr.strip()}")
    return np.load(yp)


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main():
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.f[1].running_mean.uniform_(-0.2, 0.2)
        net.f[1].running_var.uniform_(0.5, 1.5)
    # The exporter folds BatchNorm into the Conv; fold it here first so the module's parameters
    # are exactly the model's initializers and rounding one rounds the other.
    net.f[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(net.f[0], net.f[1])
    net.f[1] = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "net.onnx")
        torch.onnx.export(net, x, base, opset_version=13, input_names=["input"],
                          output_names=["out"], dynamic_axes={"input": {0: "N"}})
        with torch.no_grad():
            ref = net(x).numpy()

        # 1. External data beside the model.
        m = onnx.load(base)
        ext_dir = os.path.join(tmp, "ext")
        os.mkdir(ext_dir)
        ext = os.path.join(ext_dir, "net.onnx")
        onnx.save_model(m, ext, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="net.weights", size_threshold=0)
        err = rel_err(run_hp(ext, x.numpy(), tmp), ref)
        results.append(("external data", err, err <= 1e-4))

        # 1b. External data that points outside the model's folder is refused.
        m2 = onnx.load(ext, load_external_data=False)
        for t in m2.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = "../net.weights"
        bad = os.path.join(ext_dir, "escape.onnx")
        onnx.save(m2, bad)
        r = subprocess.run([HP_BIN, "model", "run", bad, "--input", os.path.join(tmp, "x.npy")],
                           capture_output=True, text=True)
        ok = r.returncode == 1 and "leaves the model's folder" in r.stderr
        results.append(("external data outside the folder refused", 0.0, ok))

        # 2. float16 and bfloat16 weights: PyTorch runs the same rounded weights in float32.
        for dtype, torch_dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
            m = onnx.load(base)
            for t in m.graph.initializer:
                a = numpy_helper.to_array(t)
                if a.dtype != np.float32:
                    continue
                if dtype == "float16":
                    t.CopyFrom(numpy_helper.from_array(a.astype(np.float16), t.name))
                else:
                    bits = (torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy()
                            .astype(np.uint16))
                    nt = onnx.TensorProto()
                    nt.name, nt.data_type = t.name, onnx.TensorProto.BFLOAT16
                    nt.dims.extend(a.shape)
                    nt.raw_data = bits.tobytes()
                    t.CopyFrom(nt)
            path = os.path.join(tmp, f"net_{dtype}.onnx")
            onnx.save(m, path)
            # Reference: PyTorch with the same weights rounded to the same type.
            sd = net.state_dict()
            net_r = Net().eval()
            net_r.f[0], net_r.f[1] = torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.Identity()
            new_sd = {}
            for k, v in sd.items():
                new_sd[k] = v.to(torch_dtype).to(torch.float32) if v.dtype == torch.float32 else v
            net_r.load_state_dict(new_sd)
            with torch.no_grad():
                ref_r = net_r(x).numpy()
            err = rel_err(run_hp(path, x.numpy(), tmp), ref_r)
            results.append((f"{dtype} weights", err, err <= 1e-4))

        # 3. A later opset.
        p18 = os.path.join(tmp, "net18.onnx")
        m = onnx.load(base)
        onnx.save(onnx.version_converter.convert_version(m, 17), p18)
        err = rel_err(run_hp(p18, x.numpy(), tmp), ref)
        results.append(("opset 17 (converted by onnx)", err, err <= 1e-4))

    failed = 0
    for name, err, ok in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max rel err {err:.3e}")
        failed += not ok
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
