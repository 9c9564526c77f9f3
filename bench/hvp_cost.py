#!/usr/bin/python3
"""What one exact Hessian-vector product costs in PyTorch itself, in gradient passes.

The yardstick for `fullbatch analyze`'s curvature.json field product_cost_in_gradient_passes:
the same model (fullbatch's CIFAR ResNet-18, from reference_step.py), one block of random
32x32 images, double backprop (grad with create_graph, then the gradient of <g, v>) against a
plain gradient, both timed as the best of `repeats` after one warm-up. Also tried:

  mkldnn=off        the same with oneDNN disabled: shows how much of the ratio comes from the
                    double backward of convolutions not having oneDNN kernels in this libtorch.
  forward-over-reverse  jvp of the gradient with torch.autograd.forward_ad; printed as
                    "unsupported: ..." when this libtorch lacks a forward derivative it needs
                    (1.13 lacks them for nll_loss_backward and native_batch_norm_backward).

Arguments key=value: width (16), batch (128), threads (2), repeats (3), batchnorm (train|eval).
The last line printed is JSON. Runs with Debian's python3-torch: /usr/bin/python3.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_step import ResNet18  # noqa: E402


def parse_args(argv):
    args = {"width": "16", "batch": "128", "threads": "2", "repeats": "3", "batchnorm": "train"}
    for a in argv:
        key, _, value = a.partition("=")
        if key not in args or not value:
            sys.exit(f"hvp_cost.py: bad argument '{a}' (known: {', '.join(args)})")
        args[key] = value
    return args


def best_time(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    args = parse_args(sys.argv[1:])
    torch.set_num_threads(int(args["threads"]))
    torch.manual_seed(0)
    model = ResNet18(int(args["width"]), 3, 10)
    model.train(args["batchnorm"] == "train")
    x = torch.randn(int(args["batch"]), 3, 32, 32)
    y = torch.randint(0, 10, (int(args["batch"]),))
    params = list(model.parameters())
    v = [torch.randn_like(p) for p in params]

    def gradient():
        return torch.autograd.grad(F.cross_entropy(model(x), y), params)

    def hvp():
        g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        return torch.autograd.grad(sum((a * b).sum() for a, b in zip(g, v)), params)

    repeats = int(args["repeats"])
    result = {"torch": torch.__version__, **args}
    for label, mkldnn in (("default", True), ("mkldnn_off", False)):
        torch.backends.mkldnn.enabled = mkldnn
        tg, th = best_time(gradient, repeats), best_time(hvp, repeats)
        result[label] = {"gradient_s": tg, "hvp_s": th, "ratio": th / tg}
        print(f"{label:12s} gradient {tg:.3f} s  hvp {th:.3f} s  ratio {th / tg:.1f}")
    torch.backends.mkldnn.enabled = True

    import torch.autograd.forward_ad as fwad
    from torch.nn.utils.stateless import functional_call
    names = [n for n, _ in model.named_parameters()]
    try:
        with fwad.dual_level():
            duals = [fwad.make_dual(p.detach().clone().requires_grad_(True), t) for p, t in zip(params, v)]
            loss = F.cross_entropy(functional_call(model, dict(zip(names, duals)), (x,)), y)
            torch.autograd.grad(loss, duals)
        result["forward_over_reverse"] = "supported"
    except RuntimeError as e:
        result["forward_over_reverse"] = "unsupported: " + str(e).split("\n")[0]
    print("forward-over-reverse:", result["forward_over_reverse"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
