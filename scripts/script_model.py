#!/usr/bin/env python3
"""Saves a PyTorch model as a TorchScript file that `fullbatch train model.name=torchscript
model.path=FILE` trains (docs/your-model.md).

    python3 scripts/script_model.py resnet18 num_classes=10 --out resnet18.pt        # torchvision
    python3 scripts/script_model.py mynets:Net depth=20 --out net.pt                  # a module
    python3 scripts/script_model.py path/to/nets.py:Net --input 1,3,32,32 --out net.pt
    python3 scripts/script_model.py mynets:Net --trace 1,3,32,32 --out net.pt        # trace

MODEL is a torchvision.models name or `module:Name` (an importable module or a .py file, and a
class or any function returning an nn.Module). key=value arguments go to its constructor; values
are Python literals (10, 0.5, "x", (6, 12)), anything else is passed as a string. The model is
built after torch.manual_seed(--seed), so the seed chooses its initial weights (fullbatch keeps
the file's weights whatever its own seed); --weights loads a state dict over them (strict).
The module is saved in training mode. torch.jit.script compiles forward from its source; where
that fails (dynamic Python in forward), --trace SHAPE records one forward on zeros of that shape
instead (control flow that depends on the data is then frozen). --input SHAPE runs one forward
on zeros after saving and prints the logits' shape. Needs python3-torch (and python3-torchvision
for torchvision names).
"""
import argparse
import ast
import importlib
import importlib.util
import os
import sys

import torch


def parse_shape(text):
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        sys.exit(f"script_model.py: bad shape '{text}': want comma-separated integers, e.g. 1,3,32,32")


def parse_kwargs(items):
    kwargs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            sys.exit(f"script_model.py: bad argument '{item}': want key=value")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return kwargs


def find_constructor(spec):
    if ":" not in spec:
        try:
            import torchvision.models as tvm
        except ImportError:
            sys.exit(f"script_model.py: '{spec}' is no module:Name and torchvision is not installed "
                     "(apt-get install python3-torchvision)")
        if not hasattr(tvm, spec):
            sys.exit(f"script_model.py: torchvision.models has no '{spec}'; give module:Name for your own")
        return getattr(tvm, spec)
    module_name, name = spec.rsplit(":", 1)
    if module_name.endswith(".py"):
        if not os.path.isfile(module_name):
            sys.exit(f"script_model.py: {module_name}: no such file")
        sys.path.insert(0, os.path.dirname(os.path.abspath(module_name)))
        loader_spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(module_name))[0], module_name)
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    if not hasattr(module, name):
        sys.exit(f"script_model.py: {module_name} has no '{name}'")
    return getattr(module, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="torchvision name or module:Name")
    parser.add_argument("kwargs", nargs="*", help="key=value constructor arguments")
    parser.add_argument("--out", required=True, help="TorchScript file to write")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building")
    parser.add_argument("--weights", help="state dict (torch.save of a dict) to load, strict")
    parser.add_argument("--trace", metavar="SHAPE", help="trace on zeros of SHAPE instead of scripting")
    parser.add_argument("--input", metavar="SHAPE", help="check one forward on zeros of SHAPE")
    a = parser.parse_args()

    torch.manual_seed(a.seed)
    model = find_constructor(a.model)(**parse_kwargs(a.kwargs))
    if not isinstance(model, torch.nn.Module):
        sys.exit(f"script_model.py: {a.model} returned {type(model).__name__}, not an nn.Module")
    if a.weights:
        # weights_only=False: a fullbatch model.pt carries libtorch's type tags, which
        # PyTorch >= 2.6 refuses by default; --weights is the user's own file.
        state = torch.load(a.weights, map_location="cpu", weights_only=False)
        model.load_state_dict(state, strict=True)
    model.train()
    if a.trace:
        scripted = torch.jit.trace(model, torch.zeros(parse_shape(a.trace)))
    else:
        try:
            scripted = torch.jit.script(model)
        except Exception as e:  # torch raises many types here; the first line says what failed
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            sys.exit(f"script_model.py: torch.jit.script cannot compile {a.model}: {first} "
                     "(try --trace SHAPE, see docs/your-model.md)")
    scripted.save(a.out)
    params = sum(p.numel() for p in scripted.parameters())
    print(f"wrote {a.out}: {a.model}, {params} parameters")
    if a.input:
        loaded = torch.jit.load(a.out)
        loaded.eval()
        with torch.no_grad():
            out = loaded(torch.zeros(parse_shape(a.input)))
        print(f"forward on {parse_shape(a.input)} gives {list(out.shape)}")


if __name__ == "__main__":
    main()
