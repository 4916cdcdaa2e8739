#!/usr/bin/python3
"""Builds histoplan's demo model: a small DenseNet-BC classifier with RANDOM, UNTRAINED weights.

It exists so the engine, the pipeline and the tests have a real DenseNet-shaped ONNX file to run
(dense blocks of BatchNorm-ReLU-Conv with concatenation, transitions with average pooling, global
pooling and a linear head: the operators a torchvision densenet uses) without shipping a 32 MB
download or pretending to a diagnostic ability it does not have. Its predictions are meaningless.

Writes, into --out (default models/zoo beside this script):
  histoplan-demo-densenet.onnx       opset 13, input "input" [N,3,224,224], output "logits" [N,4]
  histoplan-demo-densenet.card.json  the model card (schemas/model-card.schema.json)

Reproducible: the weights come from a fixed seed, and a rerun writes the same bytes (checked with
--check, which builds the model twice and compares). Run with Debian's interpreter:
  /usr/bin/python3 scripts/make-demo-model.py
"""

import argparse
import hashlib
import io
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

NAME = "histoplan-demo-densenet"
VERSION = "0.1.0"
CLASSES = ["normal", "benign", "in_situ", "invasive"]  # BACH's four classes, in logit order
INPUT = 224
MPP = 0.5
MEAN = [0.485, 0.456, 0.406]  # ImageNet, on RGB scaled to 0..1
STD = [0.229, 0.224, 0.225]
SEED = 20261127
GROWTH = 16
BLOCKS = (4, 4, 4)
INIT_FEATURES = 32
BN_SIZE = 4


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.norm1(x)))
        y = self.conv2(F.relu(self.norm2(y)))
        return torch.cat([x, y], 1)


class Transition(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, 2))


class DemoDenseNet(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        c = INIT_FEATURES
        layers = [nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                  nn.MaxPool2d(3, stride=2, padding=1)]
        for i, n in enumerate(BLOCKS):
            for _ in range(n):
                layers.append(DenseLayer(c, GROWTH, BN_SIZE))
                c += GROWTH
            if i + 1 < len(BLOCKS):
                layers.append(Transition(c, c // 2))
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def build():
    """The model with seeded random weights. BatchNorm statistics and affine parameters are also
    randomized (mildly), so that an engine which ignored or misapplied them would give different
    logits from PyTorch; with PyTorch's defaults (mean 0, var 1, weight 1, bias 0) it would not."""
    torch.manual_seed(SEED)
    model = DemoDenseNet(len(CLASSES))
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=g))
                m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
    return model.eval()


def export_bytes(model):
    buf = io.BytesIO()
    dummy = torch.zeros(1, 3, INPUT, INPUT)
    torch.onnx.export(model, dummy, buf, opset_version=13, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True, export_params=True)
    return buf.getvalue()


def card(sha256, n_params):
    return {
        "$schema": "../../schemas/model-card.schema.json",
        "name": NAME,
        "version": VERSION,
        "classes": CLASSES,
        "input_size": [INPUT, INPUT],
        "normalization": {"mean": MEAN, "std": STD},
        "mpp": MPP,
        "sha256": sha256,
        "training_data": "none: weights are random and untrained",
        "intended_use": (
            "Demonstration only: exercises the histoplan engine and pipeline (loading, tiling, "
            "inference, heatmaps, reports) with a DenseNet-shaped network. Its weights are random, "
            "so its outputs carry no information about the tissue. It is not a diagnostic model "
            "and must not be used for diagnosis, screening, triage or any clinical decision."),
        "metrics": {
            "note": "not evaluated: the weights are random, so accuracy is at chance level",
        },
        "license": "CC0-1.0",
        "not_for_diagnosis": True,
        "x-architecture": {
            "family": "DenseNet-BC",
            "growth_rate": GROWTH,
            "blocks": list(BLOCKS),
            "init_features": INIT_FEATURES,
            "bn_size": BN_SIZE,
            "parameters": n_params,
            "seed": SEED,
            "made_by": "scripts/make-demo-model.py",
        },
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "models", "zoo"))
    ap.add_argument("--check", action="store_true",
                    help="build twice and fail unless the ONNX bytes are identical")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    model = build()
    data = export_bytes(model)
    if args.check and export_bytes(build()) != data:
        sys.exit("make-demo-model: two builds gave different ONNX bytes")

    import onnx  # Debian's python3-onnx; only to validate what we wrote
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    ops = sorted({n.op_type for n in proto.graph.node})

    # The exported model must agree with PyTorch on a real-looking input (sanity, not accuracy).
    with torch.no_grad():
        x = torch.rand(2, 3, INPUT, INPUT, generator=torch.Generator().manual_seed(1))
        y = model(x)
    assert y.shape == (2, len(CLASSES)) and torch.isfinite(y).all()

    n_params = sum(p.numel() for p in model.parameters())
    sha = hashlib.sha256(data).hexdigest()
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, NAME + ".onnx")
    card_path = os.path.join(args.out, NAME + ".card.json")
    for path, payload in ((onnx_path, data),
                          (card_path, (json.dumps(card(sha, n_params), indent=2) + "\n").encode())):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    print(f"{onnx_path}: {len(data)} bytes, {n_params} parameters, sha256 {sha}")
    print(f"operators: {' '.join(ops)}")
    print(f"{card_path}: written")


if __name__ == "__main__":
    main()
