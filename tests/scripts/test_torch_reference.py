"""Reference check against PyTorch, computed at test time.

torchvision densenet121, densenet169 and densenet201 with seeded random weights, and a small
super-resolution net ending in PixelShuffle, are exported to ONNX; the same random batch of 2
runs through PyTorch and through `histoplan model run` (CPU backend, float32). The check is
max|ours - torch| / max|torch| <= 1e-4 for every model.

Environment: HP_BIN (the histoplan binary), HP_REF_MODELS (optional: a comma list to run a
subset), HP_TMP (optional scratch folder). Exit 77 when PyTorch is not importable."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torchvision
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipped: PyTorch not available ({e})")
    sys.exit(77)

TOL = 1e-4


class SuperRes(torch.nn.Module):
    """ESPCN-style x2 super-resolution: conv stack, then PixelShuffle (DepthToSpace, CRD)."""

    def __init__(self, scale=2):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 5, padding=2), torch.nn.PReLU(32),
            torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.LeakyReLU(0.1),
            torch.nn.Conv2d(32, 3 * scale * scale, 3, padding=1),
        )
        self.shuffle = torch.nn.PixelShuffle(scale)

    def forward(self, x):
        return torch.sigmoid(self.shuffle(self.body(x)))


def build(name):
    torch.manual_seed(0)
    if name == "superres":
        return SuperRes().eval(), (2, 3, 64, 64)
    model = getattr(torchvision.models, name)(weights=None).eval()
    # Random running statistics so BatchNorm folding is exercised with non-trivial values.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model, (2, 3, 224, 224)


def check(name, tmp, hp_bin):
    model, shape = build(name)
    onnx_path = os.path.join(tmp, f"{name}.onnx")
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    torch.onnx.export(model, x, onnx_path, opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    with torch.no_grad():
        ref = model(x).numpy()
    x_path = os.path.join(tmp, f"{name}_in.npy")
    y_path = os.path.join(tmp, f"{name}_out.npy")
    np.save(x_path, x.numpy())
    r = subprocess.run([hp_bin, "model", "run", onnx_path, "--input", x_path, "--output", y_path,
                        "--backend", "cpu"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {name}: histoplan exited {r.returncode}: {r.stderr.strip()}")
        return False
    ours = np.load(y_path)
    if ours.shape != ref.shape:
        print(f"FAIL {name}: shape {ours.shape} != {ref.shape}")
        return False
    err = float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-30))
    ok = err <= TOL and np.all(np.isfinite(ours))
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max|ours - torch| / max|torch| = {err:.3e} (limit {TOL:g})")
    return ok


def main():
    hp_bin = os.environ.get("HP_BIN", "histoplan")
    names = os.environ.get("HP_REF_MODELS", "densenet121,densenet169,densenet201,superres").split(",")
    with tempfile.TemporaryDirectory(dir=os.environ.get("HP_TMP")) as tmp:
        results = [check(n, tmp, hp_bin) for n in names]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
