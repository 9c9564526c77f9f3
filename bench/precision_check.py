#!/usr/bin/python3
"""How far a block's gradient is from the float64 one, for fp32/bf16 x NCHW/channels-last.

The gradient of bench/reference_step.py's ResNet-18 (BatchNorm in training mode) on one random
block, computed in float64 (the oracle) and with the CPU kernels fullbatch uses; prints
||g - g64|| / ||g64|| for each precision and memory format. Then the regularizer's
forward-difference Hessian-vector product (g(theta + eps/||g|| g) - g(theta)) / (eps/||g||)
(hyp.grad_reg.eps = 0.01), in fp32 NCHW and channels-last against the same difference in float64:
finite differences divide rounding errors by the small step.
  /usr/bin/python3 bench/precision_check.py [width=16] [threads=2] [seed=0]
"""
import copy
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_step as R  # noqa: E402


def batchnorm_layer_check():
    """One training-mode BatchNorm on inputs whose mean is 30x their spread, as after a ReLU."""
    x = torch.randn(64, 16, 32, 32) * 0.1 + 3.0
    outputs = {}
    for name, dtype, fmt in (("float64", torch.float64, torch.contiguous_format),
                             ("NCHW", torch.float32, torch.contiguous_format),
                             ("channels-last", torch.float32, torch.channels_last)):
        bn = torch.nn.BatchNorm2d(16).to(dtype)
        outputs[name] = bn(x.to(dtype).contiguous(memory_format=fmt)).double()
    ref = outputs["float64"]
    for name in ("NCHW", "channels-last"):
        err = ((outputs[name] - ref).norm() / ref.norm()).item()
        print(f"one BatchNorm layer, fp32 {name}: relative distance of the output to float64 {err:.2e}")


def main():
    args = {"width": "16", "threads": "2", "seed": "0"}
    for item in sys.argv[1:]:
        key, sep, value = item.partition("=")
        if not sep or key not in args:
            sys.exit(f"precision_check.py: expected one of {', '.join(args)} as key=value, got '{item}'")
        args[key] = value
    torch.set_num_threads(int(args["threads"]))
    torch.manual_seed(int(args["seed"]))
    model = R.ResNet18(int(args["width"]), 3, 10)
    # Normalized-image-like inputs with a non-zero mean, as after augmentation and Normalize.
    x = torch.randn(128, 3, 32, 32) * 0.25 + 0.4
    y = torch.randint(0, 10, (128,))

    def gradient(m, inputs, bf16):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(m(inputs), y)
        loss.backward()
        return torch.cat([p.grad.flatten().double() for p in m.parameters()])

    batchnorm_layer_check()
    oracle = gradient(copy.deepcopy(model).double(), x.double(), False)
    for bf16 in (False, True):
        for channels_last in (False, True):
            m, inputs = copy.deepcopy(model), x
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
                inputs = x.contiguous(memory_format=torch.channels_last)
            g = gradient(m, inputs, bf16)
            err = ((g - oracle).norm() / oracle.norm()).item()
            print(f"{'bf16' if bf16 else 'fp32'} {'channels-last' if channels_last else 'NCHW'}: "
                  f"relative distance to the float64 gradient {err:.2e}")

    def forward_difference(dtype, channels_last, eps=0.01):
        m, inputs = copy.deepcopy(model).to(dtype), x.to(dtype)
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        g0 = gradient(m, inputs, False)
        step = eps / g0.norm().item()
        with torch.no_grad():
            offset = 0
            for p in m.parameters():
                n = p.numel()
                p.add_(g0[offset:offset + n].view_as(p).to(dtype), alpha=step)
                offset += n
        return (gradient(m, inputs, False) - g0) / step

    hv64 = forward_difference(torch.float64, False)
    for channels_last in (False, True):
        hv = forward_difference(torch.float32, channels_last)
        err = ((hv - hv64).norm() / hv64.norm()).item()
        print(f"regularizer's forward difference, fp32 {'channels-last' if channels_last else 'NCHW'}: "
              f"relative distance to float64 {err:.2e}")


if __name__ == "__main__":
    main()
