"""A small x2 super-resolution network for the tests of `histoplan upscale`: two 3x3
convolutions and PixelShuffle added to a nearest-neighbour upsampling, made with a fixed seed and
exported to ONNX with symbolic height and width. Needs PyTorch (the caller skips without it)."""
import torch
import torch.nn.functional as F


class TinySR(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 12, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(2)

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest") + 0.1 * self.shuffle(self.c2(torch.relu(self.c1(x))))


def export_tiny_sr(path, seed=0):
    """Writes the network to `path` (ONNX, opset 13) and returns it, in eval mode."""
    torch.manual_seed(seed)
    net = TinySR().eval()
    torch.onnx.export(net, torch.rand(1, 3, 40, 40), path, opset_version=13, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "H", 3: "W"}})
    return net
