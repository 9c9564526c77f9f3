#!/usr/bin/env python3
"""Parameter counts of the reference's pyramidnet110/272, nfnet, linear and densenet161/169/201.

An independent plain-torch statement of the architectures of the reference (JonasGeiping/
fullbatchtraining: fullbatch/models/pyramidnets.py, nfnets.py, models.py and config/model/
pyramidnet110.yaml, pyramidnet272.yaml, nfn.yaml, linear.yaml), written from reading them and not
from fullbatch's C++; tests/models_extra_test.cpp compares fullbatch's models with the numbers it
prints. Only the parameters are built (no forward): the count is what is compared.

    python3 scripts/reference_param_counts.py                 # CIFAR-10: 3 channels, 10 classes
    python3 scripts/reference_param_counts.py --channels 1 --classes 7 --width 8
    python3 scripts/reference_param_counts.py --names densenet161   # "name shape" per parameter

--width applies fullbatch's model.width mapping (docs/models.md): every channel count of
PyramidNet (stem 16 and alpha) and NFNet scales by width / 64; 64 is the reference. linear has no
width; DenseNet's initial features and growth rate scale by width / 64. Needs Debian's
python3-torch.
"""
import argparse

import torch.nn as nn


def round_like_python(x):
    return int(round(x))  # round half to even, as the reference's int(round(...))


# ---- PyramidNet (pyramidnets.py, CIFAR variant) ------------------------------------------------

def pyramid_block(cin, planes, stride, bottleneck):
    """Pre-activation-free block: BN first, convs without bias, one BN after each conv; the
    shortcut (identity or a 2x2 average pool, zero-padded) has no parameters."""
    del stride  # changes no shape of a parameter
    if not bottleneck:
        return nn.ModuleDict({
            "bn1": nn.BatchNorm2d(cin),
            "conv1": nn.Conv2d(cin, planes, 3, padding=1, bias=False),
            "bn2": nn.BatchNorm2d(planes),
            "conv2": nn.Conv2d(planes, planes, 3, padding=1, bias=False),
            "bn3": nn.BatchNorm2d(planes),
        })
    return nn.ModuleDict({
        "bn1": nn.BatchNorm2d(cin),
        "conv1": nn.Conv2d(cin, planes, 1, bias=False),
        "bn2": nn.BatchNorm2d(planes),
        "conv2": nn.Conv2d(planes, planes, 3, padding=1, bias=False),
        "bn3": nn.BatchNorm2d(planes),
        "conv3": nn.Conv2d(planes, 4 * planes, 1, bias=False),
        "bn4": nn.BatchNorm2d(4 * planes),
    })


def pyramidnet(depth, alpha, bottleneck, channels, classes, width=64):
    stem = 16 * width // 64
    alpha = alpha * width / 64
    expansion = 4 if bottleneck else 1
    n = (depth - 2) // (9 if bottleneck else 6)
    step = alpha / (3 * n)
    model = nn.ModuleDict({"conv1": nn.Conv2d(channels, stem, 3, padding=1, bias=False),
                           "bn1": nn.BatchNorm2d(stem)})
    current = float(stem)  # the running (unrounded) width
    cin = stem
    for s in range(3):
        blocks = []
        for b in range(n):
            current_next = current + step
            if b > 0:
                cin = round_like_python(current) * expansion
            blocks.append(pyramid_block(cin, round_like_python(current_next), 2 if (s > 0 and b == 0) else 1,
                                        bottleneck))
            current = current_next
        cin = round_like_python(current) * expansion
        model[f"layer{s + 1}"] = nn.ModuleList(blocks)
    model["bn_final"] = nn.BatchNorm2d(cin)
    model["fc"] = nn.Linear(cin, classes)
    return model


# ---- NFNet-F0 (nfnets.py with nfn.yaml: CIFAR stem, alpha 0.2, se_ratio 0.5) -------------------

class WSConv(nn.Conv2d):
    """A Conv2d (with bias) plus the per-output-channel gain [out, 1, 1, 1]; eps and fan_in are
    non-persistent buffers in the reference, so not parameters."""

    def __init__(self, cin, cout, k, stride=1, padding=0, groups=1):
        super().__init__(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=True)
        self.gain = nn.Parameter(self.weight.new_ones(cout, 1, 1, 1))


def nf_block(cin, cout, stride, group_size, se_ratio):
    mid = cout // 2  # expansion 0.5
    groups = mid // group_size
    mid = groups * group_size
    hidden = max(1, int(cout * se_ratio))
    parts = {
        "conv0": WSConv(cin, mid, 1),
        "conv1": WSConv(mid, mid, 3, stride, 1, groups),
        "conv1b": WSConv(mid, mid, 3, 1, 1, groups),
        "conv2": WSConv(mid, cout, 1),
    }
    if stride > 1 or cin != cout:
        parts["conv_shortcut"] = WSConv(cin, cout, 1)
    parts["squeeze_excite"] = nn.ModuleDict({"linear": nn.Linear(cout, hidden),
                                             "linear_1": nn.Linear(hidden, cout)})
    block = nn.ModuleDict(parts)
    block.skip_gain = nn.Parameter(block.conv0.weight.new_zeros(()))  # the learnable skip gain
    return block


def nfnet(channels, classes, width=64):
    def scaled(c):
        return c * width // 64

    stage_widths = [scaled(c) for c in (256, 512, 1536, 1536)]
    stage_depths = [1, 2, 6, 3]
    stage_strides = [1, 2, 2, 2]
    stem_widths = [scaled(c) for c in (16, 32, 64, 128)]
    stem, cin = [], channels
    for c in stem_widths:
        stem.append(WSConv(cin, c, 3))  # unpadded, stride 1 in the CIFAR stem
        cin = c
    cin = stage_widths[0] // 2
    body = []
    for w, d, s in zip(stage_widths, stage_depths, stage_strides):
        for b in range(d):
            body.append(nf_block(cin, w, s if b == 0 else 1, scaled(128), 0.5))
            cin = w
    return nn.ModuleDict({
        "stem": nn.ModuleDict({f"conv{i}": m for i, m in enumerate(stem)}),
        "body": nn.ModuleList(body),
        "final_conv": WSConv(cin, 2 * cin, 1),
        "linear": nn.Linear(2 * cin, classes),
    })


# ---- DenseNet-BC (densenets.py with the CIFAR stem: conv0 3x3 alone, then torchvision's body) -

def densenet(growth, blocks, init_features, channels, classes, width=64, bn_size=4):
    growth = growth * width // 64
    features = init_features * width // 64
    body = {"conv0": nn.Conv2d(channels, features, 3, padding=1, bias=False)}
    for i, n in enumerate(blocks):
        layers = {}
        for j in range(n):
            cin = features + j * growth
            layers[f"denselayer{j + 1}"] = nn.ModuleDict({
                "norm1": nn.BatchNorm2d(cin),
                "conv1": nn.Conv2d(cin, bn_size * growth, 1, bias=False),
                "norm2": nn.BatchNorm2d(bn_size * growth),
                "conv2": nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
            })
        body[f"denseblock{i + 1}"] = nn.ModuleDict(layers)
        features += n * growth
        if i != len(blocks) - 1:  # a transition halves the features
            body[f"transition{i + 1}"] = nn.ModuleDict({
                "norm": nn.BatchNorm2d(features),
                "conv": nn.Conv2d(features, features // 2, 1, bias=False)})
            features //= 2
    body["norm5"] = nn.BatchNorm2d(features)
    return nn.ModuleDict({"features": nn.ModuleDict(body),
                          "classifier": nn.Linear(features, classes)})


# ---- linear (models.py: Flatten, select the first 100 values, Linear(100, classes)) -----------

def linear(classes):
    return nn.ModuleDict({"2": nn.Linear(100, classes)})


def count(model):
    return sum(p.numel() for p in model.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--names", metavar="MODEL",
                        help="print one model's parameter names and shapes instead of the counts")
    a = parser.parse_args()
    models = {
        "pyramidnet110": lambda: pyramidnet(110, 84, False, a.channels, a.classes, a.width),
        "pyramidnet272": lambda: pyramidnet(272, 200, True, a.channels, a.classes, a.width),
        "nfnet": lambda: nfnet(a.channels, a.classes, a.width),
        "linear": lambda: linear(a.classes),
        "densenet161": lambda: densenet(48, (6, 12, 36, 24), 96, a.channels, a.classes, a.width),
        "densenet169": lambda: densenet(32, (6, 12, 32, 32), 64, a.channels, a.classes, a.width),
        "densenet201": lambda: densenet(32, (6, 12, 48, 32), 64, a.channels, a.classes, a.width),
    }
    if a.names:
        for name, p in models[a.names]().named_parameters():
            print(name, "x".join(str(d) for d in p.shape))
        return
    for name, build in models.items():
        print(f"{name} {count(build())}")


if __name__ == "__main__":
    main()
