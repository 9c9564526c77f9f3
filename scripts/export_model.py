#!/usr/bin/env python3
"""Exports fullbatch weights as TorchScript or ONNX, and prints a batch's logits.

fullbatch writes weights as model.pt (a pickled dict {name: tensor} that torch.load reads) and,
with `fullbatch export`, as safetensors. This script rebuilds the model in plain torch.nn
(tests/parity/models.py: the C++ models' module names, shapes and forward), loads the weights
with strict=True, puts it in eval mode and writes

  --format torchscript   torch.jit.trace of the model (load it with torch.jit.load)
  --format onnx          torch.onnx.export, opset 13: "input" [N, C, H, W] -> "logits"
                         [N, classes], N dynamic

    python3 scripts/export_model.py --weights RUN/model.pt --config RUN/config.yaml \\
        --format torchscript --out model.ts
    python3 scripts/export_model.py --weights model.safetensors --format onnx --out model.onnx
    ... --check-input batch.pt --print-logits   # the exported model's logits, one JSON line

--weights takes model.pt (or an init-weights file), a .safetensors file (parsed here with struct
and json; no safetensors package) or a checkpoint (.ckpt). The architecture's name comes from
--model, else model.name of --config, else the file's own metadata, else the weights' layout;
width, input channels and classes come from the weights' shapes. --check-input is a .pt file
holding a float tensor [N, C, H, W] (or a dict with one, e.g. {"input": x}): the exported model
(TorchScript; ONNX through onnxruntime where installed, else the PyTorch model) computes its
logits, which must equal the PyTorch model's. Needs Debian's python3-torch and nothing else
(python3-yaml is used when present). Every error is one line on stderr and exit status 2.
"""
import argparse
import importlib.util
import inspect
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PARITY = os.path.join(HERE, os.pardir, "tests", "parity")

SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                      "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
                      "BOOL": "bool"}
CHECKPOINT_MAGIC = b"FBCKPT\r\n"
FIRST_CONV = ("conv1.weight", "features.0.weight", "features.conv0.weight")
HEAD = ("fc.weight", "classifier.weight")
TOLERANCE = 1e-5  # exported model against the PyTorch model, on --check-input


class ExportError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def one_line(text, limit=400):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_parity_module(name):
    """tests/parity/<name>.py, loaded by path (a module called `models` elsewhere cannot shadow it)."""
    path = os.path.join(PARITY, name + ".py")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: not found (run the script from a fullbatch source tree)")
    spec = importlib.util.spec_from_file_location("fullbatch_parity_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- reading weights --------------------------------------------------------------------------

def read_safetensors(path, data):
    import torch
    def bad(why):
        raise ExportError(f"safetensors file {path}: {why}")
    if sys.byteorder != "little":
        bad("this reader needs a little-endian machine")
    if len(data) < 8:
        bad("shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        bad(f"header length {n} runs past the end of the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        bad("header is not valid JSON")
    if not isinstance(header, dict):
        bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    state = {}
    for name, entry in header.items():
        try:
            dtype = getattr(torch, SAFETENSORS_DTYPES[entry["dtype"]])
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            bad(f"tensor {name!r}: malformed header entry")
        numel = math.prod(shape)
        size = torch.empty((), dtype=dtype).element_size()
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= len(body) or end - begin != numel * size:
            bad(f"tensor {name!r}: data_offsets [{begin}, {end}] do not hold shape {shape} of "
                f"{entry['dtype']} within the {len(body)} data bytes")
        if numel == 0:
            state[name] = torch.empty(shape, dtype=dtype)
        else:
            state[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(shape)
    return state, {str(k): str(v) for k, v in metadata.items()}


def read_weights(path):
    """{name: tensor} and metadata {key: text} ("fullbatch_config" for a checkpoint's config)."""
    import torch
    if not os.path.isfile(path):
        raise ExportError(f"weights file {path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(CHECKPOINT_MAGIC):
        io = load_parity_module("fullbatch_io")
        try:
            meta, state = io.read_checkpoint(path)
        except ValueError as e:
            raise ExportError(one_line(e))
        model = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        return model, {"fullbatch_config": meta.get("config", "")}
    if not (data.startswith(b"PK") or data.startswith(b"\x80")):  # zip or legacy pickle: torch.save
        return read_safetensors(path, data)
    try:
        # fullbatch's weights files carry libtorch's type tags, which PyTorch >= 2.6 refuses
        # under its default weights_only=True; they are the user's own run's files.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch.load raises many kinds for a damaged file
        raise ExportError(f"weights file {path}: not readable by torch.load ({one_line(e, 120)})")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"weights file {path}: not a dict of tensors")
    return {str(k): v for k, v in state.items()}, {}


# ---- config -----------------------------------------------------------------------------------

def parse_simple_yaml(text):
    """Nested `key: value` maps, as fullbatch's config.yaml has them (when python3-yaml is absent)."""
    root = {}
    stack = [(-1, root)]
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        key, _, value = raw.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        value = value.strip()
        if value == "":
            parent[key.strip()] = {}
            stack.append((indent, parent[key.strip()]))
        else:
            parent[key.strip()] = value.strip("'\"")
    return root


def parse_config(text, origin):
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is None:
        config = parse_simple_yaml(text)
    else:
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ExportError(f"config {origin}: invalid YAML ({one_line(e, 160)})")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ExportError(f"config {origin}: expected a mapping of keys to values")
    return config


def config_value(config, key):
    """A dotted key, written nested (model: {name: x}) or dotted (model.name: x)."""
    if key in config:
        return config[key]
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# ---- the model --------------------------------------------------------------------------------

def shapes_of(state):
    """(width, input channels, classes) from the first convolution and the classifier."""
    conv = next((state[k] for k in FIRST_CONV if k in state), None)
    head = next((state[k] for k in HEAD if k in state), None)
    if conv is None or head is None or conv.dim() != 4 or head.dim() != 2:
        raise ExportError("the weights have no first convolution and classifier as fullbatch writes them "
                          "(conv1/fc, features.0/classifier or features.conv0/classifier)")
    return int(conv.shape[0]), int(conv.shape[1]), int(head.shape[0])


def infer_name(state, models):
    """The architecture whose names the weights carry, or None."""
    keys = set(state)
    if "features.conv0.weight" in keys and len(models.DENSENETS) == 1:
        return next(iter(models.DENSENETS))
    if "features.0.weight" in keys:
        convs = sum(1 for k, v in state.items() if k.startswith("features.") and k.endswith(".weight") and v.dim() == 4)
        return next((n for n, c in models.VGGS.items() if sum(1 for x in c if x != models.P) == convs), None)
    if "conv3.weight" in keys and "bn1.weight" not in keys:
        return "simplecnn"
    if "bn1.weight" in keys:
        kind = "bottleneck" if "layer1.0.bn3.weight" in keys else "basic"
        depths, stage = [], 1
        while True:
            blocks = {k.split(".")[1] for k in keys if k.startswith(f"layer{stage}.")}
            if not blocks:
                break
            depths.append(len(blocks))
            stage += 1
        return next((n for n, (k, d) in models.RESNETS.items() if k == kind and tuple(d) == tuple(depths)), None)
    return None


def model_name(args, state, metadata, models):
    """The architecture's name and where it came from."""
    if args.model:
        return args.model, "--model"
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            name = config_value(parse_config(f.read(), args.config), "model.name")
        if name:
            return str(name), args.config
    if metadata.get("model.name"):
        return metadata["model.name"], "the metadata of " + args.weights
    if metadata.get("fullbatch_config"):
        name = config_value(parse_config(metadata["fullbatch_config"], "in " + args.weights), "model.name")
        if name:
            return str(name), "the config in " + args.weights
    name = infer_name(state, models)
    if name is None:
        raise ExportError(f"{args.weights}: cannot tell the architecture from the weights; give --model or --config")
    return name, "the weights' names"


def config_key(args, metadata, key):
    """`key` from --config, else from the config in the weights' metadata (None when absent)."""
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            return config_value(parse_config(f.read(), args.config), key)
    if metadata.get("fullbatch_config"):
        return config_value(parse_config(metadata["fullbatch_config"], "in " + args.weights), key)
    return None


def build_scripted(args, state, metadata):
    """model.name=torchscript: the run's own TorchScript file (model.path) with the weights."""
    import torch
    path = config_key(args, metadata, "model.path")
    if not path or not os.path.isfile(str(path)):
        raise ExportError(f"model.name=torchscript needs its model.path file (from --config): {path!r} is missing")
    model = torch.jit.load(str(path), map_location="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{args.weights}: the weights do not fit {path}: {one_line(e, 300)}")
    model.eval()
    # The input channels of the example batch: the first convolution's, as far as one can tell.
    first_conv = next((p for p in model.parameters() if p.dim() == 4), None)
    channels = int(first_conv.shape[1]) if first_conv is not None else 3
    return model, {"model": "torchscript", "path": str(path), "in_channels": channels}


def build_model(args, state, metadata):
    models = load_parity_module("models")
    name, origin = model_name(args, state, metadata, models)
    if name == "torchscript":
        return build_scripted(args, state, metadata)
    width, in_channels, classes = shapes_of(state)
    try:
        model = models.build(name, width, in_channels, classes)
    except ValueError as e:
        raise ExportError(f"model.name from {origin}: {one_line(e)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{args.weights}: the weights do not fit {name} (width {width}, {in_channels} input "
                          f"channels, {classes} classes; name from {origin}): {one_line(e, 300)}")
    model.eval()
    return model, {"model": name, "width": width, "in_channels": in_channels, "num_classes": classes}


# ---- export -----------------------------------------------------------------------------------

def export_torchscript(model, example, out):
    import torch
    if isinstance(model, torch.jit.ScriptModule):  # model.name=torchscript: already scripted
        traced = model
    else:
        with torch.no_grad():
            traced = torch.jit.trace(model, example)
    tmp = out + ".tmp"
    traced.save(tmp)
    os.replace(tmp, out)
    loaded = torch.jit.load(out, map_location="cpu")
    return lambda x: loaded(x), "torchscript"


def export_onnx(model, example, out):
    import torch
    try:
        import torch.onnx
        export = torch.onnx.export
    except (ImportError, AttributeError) as e:
        raise ExportError(f"ONNX export is unavailable in this PyTorch ({one_line(e, 160)})")
    options = {"input_names": ["input"], "output_names": ["logits"], "opset_version": 13,
               "dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}}
    if "dynamo" in inspect.signature(export).parameters:
        options["dynamo"] = False  # the TorchScript-based exporter: no onnxscript needed
    tmp = out + ".tmp"
    try:
        with torch.no_grad():
            export(model, example, tmp, **options)
    except (ImportError, ModuleNotFoundError) as e:
        raise ExportError(f"ONNX export is unavailable in this PyTorch ({one_line(e, 160)})")
    except RuntimeError as e:
        raise ExportError(f"ONNX export failed: {one_line(e, 300)}")
    os.replace(tmp, out)
    try:
        import onnxruntime
    except ImportError:
        return None, "pytorch (onnxruntime is not installed: the ONNX file itself was not run)"
    session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), "onnxruntime"


def read_input(path, in_channels):
    import torch
    try:
        value = torch.load(path, map_location="cpu")
    except Exception as e:
        raise ExportError(f"input file {path}: not readable by torch.load ({one_line(e, 120)})")
    if isinstance(value, dict):
        value = value.get("input", next(iter(value.values())) if len(value) == 1 else None)
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[1] != in_channels:
        raise ExportError(f"input file {path}: expected a tensor [N, {in_channels}, H, W] (or a dict with one)")
    return value.float()


def run(args):
    import torch
    state, metadata = read_weights(args.weights)
    model, info = build_model(args, state, metadata)
    batch = read_input(args.check_input, info["in_channels"]) if args.check_input else None
    if batch is not None:
        height, width = batch.shape[2], batch.shape[3]
    elif args.input_size:
        height, width = args.input_size
    else:
        height = width = 28 if info["in_channels"] == 1 else 32
    # Traced on its own batch of two, so the check input also shows another batch size works.
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, info["in_channels"], height, width, generator=generator)
    if args.format == "torchscript":
        exported, runtime = export_torchscript(model, example, args.out)
    else:
        exported, runtime = export_onnx(model, example, args.out)
    result = dict(info, format=args.format, out=args.out)
    if batch is None:
        return result
    with torch.no_grad():
        reference = model(batch)
        logits = reference if exported is None else exported(batch)
    if logits.shape != reference.shape:
        raise ExportError(f"the exported model's logits have shape {list(logits.shape)}, "
                          f"the PyTorch model's {list(reference.shape)}")
    difference = float((logits - reference).abs().max()) if logits.numel() else 0.0
    if difference > TOLERANCE:
        raise ExportError(f"the exported model's logits differ from the PyTorch model's by {difference:.3g}")
    result.update(input_shape=list(batch.shape), logits_from=runtime, max_abs_difference=difference,
                  logits=logits.tolist())
    return result


def parse_args(argv):
    p = argparse.ArgumentParser(description="Export fullbatch weights as TorchScript or ONNX.")
    p.add_argument("--weights", required=True, help="model.pt, a .safetensors file or a .ckpt")
    p.add_argument("--config", help="the run's config.yaml (for model.name)")
    p.add_argument("--model", help="architecture name (overrides --config and the file's metadata)")
    p.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--check-input", help=".pt file with a float tensor [N, C, H, W]")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                   help="image size to trace with (default: the check input's, else 32x32, 28x28 for 1 channel)")
    p.add_argument("--print-logits", action="store_true",
                   help="print the exported model's logits on --check-input as one JSON line")
    return p.parse_args(argv)


def fail(message):
    print(f"export_model.py: error: {one_line(message, 600)}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    args = parse_args(argv)
    if args.print_logits and not args.check_input:
        fail("--print-logits needs --check-input FILE")
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("PyTorch is not installed for this python3 (Debian: apt-get install python3-torch)")
    try:
        result = run(args)
    except ExportError as e:
        fail(str(e))
    except OSError as e:
        fail(f"{e.filename}: {e.strerror}")
    if "path" in result:  # model.name=torchscript: the run's own module
        what = f"torchscript {result['path']} ({result['in_channels']} input channels)"
    else:
        what = f"{result['model']} (width {result['width']}, {result['in_channels']} input channels, " \
               f"{result['num_classes']} classes)"
    print(f"{args.out}: {args.format} of {what} from {args.weights}", file=sys.stderr)
    if "logits" in result:
        print(f"checked on {args.check_input}: logits from {result['logits_from']} within "
              f"{result['max_abs_difference']:.3g} of the PyTorch model's", file=sys.stderr)
    if args.print_logits:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
