"""fullbatch's models rebuilt in plain torch.nn, for the parity test.

Module, parameter and buffer names, shapes and registration order are those of the C++ models
(src/fullbatch/models/resnet.cpp, vgg_densenet.cpp, simple_cnn.cpp), so `load_state_dict(...,
strict=True)` of a fullbatch weights file succeeds and `named_parameters()` enumerates in the same
order as the C++ `parameters()` (which keys the "optim.momentum.<i>" and "ema.<i>" entries).

Weights are never initialized here for use: every test loads fullbatch's init file.

DenseNet: the CIFAR stem is the reference's (breaching/cases/models/densenets.py, stem "CIFAR"):
`conv0` alone, no norm0/relu0 (REFERENCE_NOTES.md item 1). `densenet_stem_norm0=True` builds the
stem fullbatch had before that fix (conv0, norm0, relu0), only to measure the rest of a DenseNet
row while the C++ still has it; such a row is reported as a structural mismatch.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- ResNet (resnet.cpp) -----------------------------------------------------------------------

RESNETS = {  # name: (block kind, blocks per stage)
    "resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)), "resnet20": ("basic", (3, 3, 3)),
    "resnet32": ("basic", (5, 5, 5)), "resnet56": ("basic", (9, 9, 9)),
    "resnet110": ("basic", (18, 18, 18)),
}


def conv3x3(cin, cout, stride):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout):
    return nn.Conv2d(cin, cout, 1, bias=False)


def make_shortcut(cin, cout, stride):
    """Shortcut "C": [Identity | AvgPool2d(stride, ceil_mode)] + 1x1 conv + BN (slot 0 is always
    there, so the projection is shortcut.1 / shortcut.2)."""
    first = nn.Identity() if stride == 1 else nn.AvgPool2d(stride, stride, ceil_mode=True)
    return nn.Sequential(first, conv1x1(cin, cout), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        out = planes * self.expansion
        self.shortcut = make_shortcut(cin, out, stride) if (stride != 1 or cin != out) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)   # stride on the 3x3 (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        out = planes * self.expansion
        self.shortcut = make_shortcut(cin, out, stride) if (stride != 1 or cin != out) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)


class ResNet(nn.Module):
    """CIFAR stem (3x3 stride-1 conv, BN, ReLU, no max-pool); stage i has width*2^i planes."""

    def __init__(self, name, width, in_channels, num_classes):
        super().__init__()
        kind, depths = RESNETS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = conv3x3(in_channels, width, 1)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        self.layer4 = None  # the CIFAR ResNets (20/32/56/110) have three stages
        for stage, depth in enumerate(depths):
            planes = width << stage
            blocks = []
            for b in range(depth):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(block(cin, planes, stride))
                cin = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    # Written out (no getattr) so torch.jit.script compiles it: tests/torchscript_test.cpp trains
    # a scripted copy against the zoo's model.
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        if self.layer4 is not None:
            out = self.layer4(out)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


# ---- VGG with BatchNorm (vgg_densenet.cpp) -----------------------------------------------------

P = 0  # a max-pool
VGGS = {
    "vgg11": [64, P, 128, P, 256, 256, P, 512, 512, P, 512, 512, P],
    "vgg13": [64, 64, P, 128, 128, P, 256, 256, P, 512, 512, P, 512, 512, P],
    "vgg16": [64, 64, P, 128, 128, P, 256, 256, 256, P, 512, 512, 512, P, 512, 512, 512, P],
    "vgg19": [64, 64, P, 128, 128, P, 256, 256, 256, 256, P, 512, 512, 512, 512, P,
              512, 512, 512, 512, P],
}


class VGG(nn.Module):
    """features = [conv(bias) BN ReLU]* with MaxPool2d(2, 2, ceil_mode); channels c*width/64
    (fullbatch honours model.width; the reference's VGG ignores it); adaptive average pool;
    classifier = Linear."""

    def __init__(self, name, width, in_channels, num_classes):
        super().__init__()
        layers, cin = [], in_channels
        for c in VGGS[name]:
            if c == P:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                continue
            out = c * width // 64
            layers += [nn.Conv2d(cin, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            cin = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(out, 1))


# ---- DenseNet (vgg_densenet.cpp; stem as the reference) ----------------------------------------

# blocks, growth at width 64, bn_size, initial features at width 64 (the reference's
# densenet_depths_to_config)
DENSENETS = {"densenet121": ((6, 12, 24, 16), 32, 4, 64),
             "densenet161": ((6, 12, 36, 24), 48, 4, 96),
             "densenet169": ((6, 12, 32, 32), 32, 4, 64),
             "densenet201": ((6, 12, 48, 32), 32, 4, 64)}


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return torch.cat([x, out], 1)


class DenseBlock(nn.Module):
    def __init__(self, layers, cin, growth, bn_size):
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


class Transition(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2, 2)


class DenseNet(nn.Module):
    """features: conv0 (3x3, stride 1), denseblock1, transition1, ..., denseblock4, norm5;
    then ReLU, adaptive average pool, classifier. Initial features = features_at_64 * width / 64
    (model.width itself for 121/169/201); growth = growth_at_64 * width / 64."""

    def __init__(self, name, width, in_channels, num_classes, densenet_stem_norm0=False):
        super().__init__()
        blocks, growth64, bn_size, features64 = DENSENETS[name]
        growth = growth64 * width // 64
        width = features64 * width // 64
        if growth < 1:
            raise ValueError(f"model.width {width} gives {name} a growth rate of 0")
        feats = [("conv0", nn.Conv2d(in_channels, width, 3, padding=1, bias=False))]
        if densenet_stem_norm0:     # fullbatch's stem before the fix, not the reference's
            feats += [("norm0", nn.BatchNorm2d(width)), ("relu0", nn.ReLU(inplace=True))]
        ch = width
        for i, n in enumerate(blocks):
            feats.append((f"denseblock{i + 1}", DenseBlock(n, ch, growth, bn_size)))
            ch += n * growth
            if i + 1 < len(blocks):
                feats.append((f"transition{i + 1}", Transition(ch, ch // 2)))
                ch //= 2
        feats.append(("norm5", nn.BatchNorm2d(ch)))
        self.features = nn.Sequential()
        for k, m in feats:
            self.features.add_module(k, m)
        self.classifier = nn.Linear(ch, num_classes)

    def forward(self, x):
        out = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


# ---- SimpleCNN (simple_cnn.cpp) ----------------------------------------------------------------

class SimpleCNN(nn.Module):
    def __init__(self, width, in_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


# ---- factory -----------------------------------------------------------------------------------

def model_names():
    return list(RESNETS) + list(VGGS) + list(DENSENETS) + ["simplecnn"]


def build(name, width=64, in_channels=3, num_classes=10, densenet_stem_norm0=False):
    if name in RESNETS:
        return ResNet(name, width, in_channels, num_classes)
    if name in VGGS:
        return VGG(name, width, in_channels, num_classes)
    if name in DENSENETS:
        return DenseNet(name, width, in_channels, num_classes, densenet_stem_norm0)
    if name == "simplecnn":
        return SimpleCNN(width, in_channels, num_classes)
    raise ValueError(f"unknown model {name!r} (known: {', '.join(model_names())})")


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def load_fullbatch_weights(model, state):
    """Loads a fullbatch weights dict (model.pt / init file keys) with strict=True: names and
    shapes must match exactly. (The file's dict is sorted by name, so it says nothing about the
    registration order; that is fixed by the constructors above, mirroring the C++.)"""
    model.load_state_dict(state, strict=True)
    return model


def is_bn_buffer(name):
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


if __name__ == "__main__":
    # Parameter counts of the paper's models (CIFAR-10 shapes) and of the test's tiny ones.
    for n in ("resnet18", "resnet50", "resnet152", "vgg16", "densenet121", "simplecnn"):
        w = 64 if n != "simplecnn" else 16
        print(f"{n:12s} width {w}, CIFAR-10: {count_parameters(build(n, w, 3, 10)):>10,d} parameters")
    for n in ("resnet18", "resnet50", "vgg16", "densenet121"):
        m = build(n, 4, 1, 10)
        print(f"{n:12s} width 4, Fashion-MNIST: {count_parameters(m):>8,d} parameters")
