#!/usr/bin/python3
"""Where one block's forward + backward spends its time, op by op (torch.profiler).

Uses bench/reference_step.py's ResNet-18 on random CIFAR-sized data with the same libtorch as the
C++ build, so the shares are those of fullbatch's step (the same ATen/oneDNN kernels).
  /usr/bin/python3 bench/op_profile.py [threads=1] [width=16] [channels_last=false] [bf16=false]
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_step as R  # noqa: E402


def main():
    args = {"threads": "1", "width": "16", "channels_last": "false", "bf16": "false",
            "batch": "128"}
    for item in sys.argv[1:]:
        key, sep, value = item.partition("=")
        if not sep or key not in args:
            sys.exit(f"op_profile.py: expected one of {', '.join(args)} as key=value, got '{item}'")
        args[key] = value
    on = lambda k: args[k].lower() in ("1", "true", "yes", "on")  # noqa: E731
    torch.set_num_threads(int(args["threads"]))
    model = R.ResNet18(int(args["width"]), 3, 10)
    x = torch.randn(int(args["batch"]), 3, 32, 32)
    y = torch.randint(0, 10, (int(args["batch"]),))
    if on("channels_last"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def block():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on("bf16")):
            loss = F.cross_entropy(model(x), y)
        loss.backward()

    for _ in range(3):
        block()
    t0 = time.perf_counter()
    for _ in range(5):
        block()
    print(f"one block forward + backward: {(time.perf_counter() - t0) / 5 * 1e3:.1f} ms")
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            block()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


if __name__ == "__main__":
    main()
