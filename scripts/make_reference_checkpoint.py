#!/usr/bin/env python3
"""Writes weight files laid out as the reference implementation writes them, for
tests/reference_weights_test.cpp.

The reference (JonasGeiping/fullbatchtraining) saves its models with torch.save in two ways:
fullbatch/training/utils.py `_save_to_checkpoint` writes the list
[optimizer state, model state_dict, scheduler state, scaler state, step], which is also what its
hubconf.py unpacks from the published .pth files; `_save_state_for_visualization` writes
dict(state_dict=..., model_cfg=..., grads=..., update_directions=...). The model is built here in
plain torch.nn with the reference's module names and forward (fullbatch/models/resnets.py with
stem "CIFAR" and downsample "C"; the kuangliu-style VGG with head "CIFAR"; the torchvision-style
DenseNet with stem "CIFAR"), written from those descriptions and not from fullbatch's C++ or
tests/parity/models.py, so the test compares two independent statements of each architecture.

--width scales every stage as fullbatch's model.width does (channels of the first stage; the
DenseNet's growth rate is 32 * width / 64). The reference's own ResNet always builds width 64:
its `isinstance(block, BasicBlock)` tests a class, so width_per_group never takes effect.

Weights are seeded random values; BatchNorm running statistics come from forward passes in
train mode over random batches (so eval-mode logits stay of order one), after one SGD step that
gives the optimizer its momentum buffers. Files written to --out-dir:

  checkpoint.pth  [optimizer state, model state, scheduler state, None, step]; the scheduler
                  state holds Python objects (a warmup wrapper's after_scheduler, a Counter), as
                  the reference's GradualWarmupScheduler and MultiStepLR leave them
  state_dict.pth  the model's state_dict (an OrderedDict) alone
  ddp.pth         the same with every name under "module."
  payload.pth     the visualization payload, model_cfg an arbitrary Python object
  expected.pt     {"input": x, "logits": model(x)} in eval mode, a plain dict of tensors

Usage: make_reference_checkpoint.py --model resnet18 --width 4 --out-dir DIR
Needs Debian's python3-torch. Errors are one line on stderr and exit status 2.
"""
import argparse
import collections
import os
import sys
import types

import torch
from torch import nn

RESNETS = {  # depth: (block, blocks per stage), resnets.py resnet_depths_to_config
    18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3]),
    20: ("basic", [3, 3, 3]), 32: ("basic", [5, 5, 5]), 56: ("basic", [9, 9, 9]),
    110: ("basic", [18, 18, 18]),
}
VGGS = {  # "M" is a 2x2 max-pool
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


# ---- ResNet: stem.{0,1}, layers.<stage>.<block>.{conv,bn}<k>, .downsample.{1,2}, fc ----------

class Basic(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.nonlin = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.nonlin(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.nonlin(out + skip)


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)  # v1.5
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.nonlin = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.nonlin(self.bn1(self.conv1(x)))
        out = self.nonlin(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.nonlin(out + skip)


class ResNet(nn.Module):
    def __init__(self, depth, width, channels, classes):
        super().__init__()
        kind, stages = RESNETS[depth]
        block = Basic if kind == "basic" else Bottle
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, stride=1, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        inplanes, planes, layers = width, width, []
        for index, count in enumerate(stages):
            stride = 1 if index == 0 else 2
            blocks = []
            for b in range(count):
                s = stride if b == 0 else 1
                out = planes * block.expansion
                downsample = None
                if s != 1 or inplanes != out:  # shortcut "C": average-pool, then 1x1 conv + BN
                    downsample = nn.Sequential(nn.AvgPool2d(kernel_size=s, stride=s),
                                               nn.Conv2d(inplanes, out, 1, bias=False),
                                               nn.BatchNorm2d(out))
                blocks.append(block(inplanes, planes, s, downsample))
                inplanes = out
            layers.append(nn.Sequential(*blocks))
            planes *= 2
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.layers(self.stem(x))), 1))


# ---- VGG: features.<i> (conv with bias, BN, ReLU; max-pools), classifier ----------------------

class VGG(nn.Module):
    def __init__(self, name, width, channels, classes):
        super().__init__()
        layers, inplanes = [], channels
        for c in VGGS[name]:
            if c == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            out = c * width // 64
            layers += [nn.Conv2d(inplanes, out, 3, padding=1), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]
            inplanes = out
        layers.append(nn.AvgPool2d(kernel_size=1, stride=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(inplanes, classes)

    def forward(self, x):
        out = self.features(x)
        return self.classifier(out.view(out.size(0), -1))


# ---- DenseNet-BC 121: features.{conv0, denseblock<i>.denselayer<j>, transition<i>, norm5} -----

class DenseLayer(nn.Module):
    def __init__(self, inplanes, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(inplanes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inplanes, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, count, inplanes, growth, bn_size):
        super().__init__()
        for j in range(count):
            self.add_module("denselayer%d" % (j + 1), DenseLayer(inplanes + j * growth, growth,
                                                                  bn_size))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, inplanes, out):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(inplanes))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(inplanes, out, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(nn.Module):
    def __init__(self, width, channels, classes, blocks=(6, 12, 24, 16), bn_size=4):
        super().__init__()
        growth = 32 * width // 64
        self.features = nn.Sequential(collections.OrderedDict(
            [("conv0", nn.Conv2d(channels, width, 3, stride=1, padding=1, bias=False))]))
        features = width
        for i, count in enumerate(blocks):
            self.features.add_module("denseblock%d" % (i + 1),
                                     DenseBlock(count, features, growth, bn_size))
            features += count * growth
            if i != len(blocks) - 1:
                self.features.add_module("transition%d" % (i + 1),
                                         Transition(features, features // 2))
                features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(features))
        self.nonlin = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(features, classes)

    def forward(self, x):
        out = nn.functional.adaptive_avg_pool2d(self.nonlin(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(out, 1))


def build(name, width, channels, classes):
    if name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in RESNETS:
        return ResNet(int(name[6:]), width, channels, classes)
    if name in VGGS:
        return VGG(name, width, channels, classes)
    if name == "densenet121":
        return DenseNet(width, channels, classes)
    raise ValueError(f"--model {name}: must be resnet<depth> ({sorted(RESNETS)}), "
                     f"{', '.join(VGGS)} or densenet121")


# ---- weights, optimizer and scheduler state ---------------------------------------------------

class WarmupScheduler:
    """Stands in for the reference's GradualWarmupScheduler: its state_dict() keeps every
    attribute but the optimizer, so the saved scheduler state holds the wrapped scheduler object
    (and through it the optimizer and its parameters)."""

    def __init__(self, optimizer, after_scheduler):
        self.optimizer = optimizer
        self.multiplier = 1.0
        self.total_epoch = 3
        self.after_scheduler = after_scheduler
        self.finished = False

    def state_dict(self):
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}


def randomize(model, generator):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:  # conv and linear weights, He-scaled by fan-in
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("weight"):  # BatchNorm scale
                p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)


def calibrate_batchnorm(model, channels, generator, batches=3):
    """Running statistics of real activations (a cumulative average over random batches)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(16, channels, 32, 32, generator=generator))
    for m in norms:
        m.momentum = 0.1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out-dir", required=True)
    args = p.parse_args(argv)
    if args.width < 1 or args.in_channels < 1 or args.classes < 1:
        raise ValueError("--width, --in-channels and --classes must be positive")
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model = build(args.model, args.width, args.in_channels, args.classes)
    randomize(model, generator)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    scheduler = WarmupScheduler(optimizer, torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[30, 60], gamma=0.1))
    model.train()
    inputs = torch.randn(8, args.in_channels, 32, 32, generator=generator)
    labels = torch.randint(0, args.classes, (8,), generator=generator)
    nn.functional.cross_entropy(model(inputs), labels).backward()
    optimizer.step()
    calibrate_batchnorm(model, args.in_channels, generator)

    model.eval()
    x = torch.randn(4, args.in_channels, 32, 32, generator=generator)
    with torch.no_grad():
        logits = model(x)

    state = model.state_dict()
    os.makedirs(args.out_dir, exist_ok=True)
    out = lambda name: os.path.join(args.out_dir, name)  # noqa: E731
    torch.save([optimizer.state_dict(), state, scheduler.state_dict(), None, 1],
               out("checkpoint.pth"))
    torch.save(state, out("state_dict.pth"))
    ddp = collections.OrderedDict(("module." + k, v) for k, v in state.items())
    torch.save(ddp, out("ddp.pth"))
    grads = [p.grad.detach() for p in model.parameters()]
    torch.save(dict(state_dict=state,
                    model_cfg=types.SimpleNamespace(name=args.model, width=args.width),
                    grads=grads, update_directions=grads), out("payload.pth"))
    torch.save({"input": x, "logits": logits}, out("expected.pt"))
    print(f"{args.out_dir}: {args.model} width {args.width}, {len(state)} tensors")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:
        print(f"make_reference_checkpoint.py: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
