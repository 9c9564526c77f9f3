"""Readers for the files fullbatch writes, in plain Python (no fullbatch code).

* weights files (`RUN/model.pt`, `init-weights --out FILE`): torch.pickle_save of a dict
  {name: tensor}; `torch.load` reads them as they are.
* checkpoints (`RUN/checkpoints/step_NNNNNN.ckpt`), framed as src/fullbatch/run/checkpoint_format.h
  documents:

      offset  size  field
      0       8     magic b"FBCKPT\\r\\n"
      8       4     format version, little-endian uint32 (1)
      12      8     metadata length M, little-endian uint64
      20      M     metadata JSON (format, step, finished, config YAML text, metrics JSONL text)
      20+M    8     payload length P, little-endian uint64
      28+M    P     payload: pickled dict {name: tensor}, torch.load(io.BytesIO(payload))
      28+M+P  4     zlib crc32 of every byte before it, little-endian uint32

  Keys of the state: "model.<name>" (parameters and buffers), "optim.momentum.<i>",
  "ema.<i>" (EMA: parameters then buffers, in model order), "trainer.*".
"""
import io
import json
import os
import re
import struct
import zlib

import torch

MAGIC = b"FBCKPT\r\n"
VERSION = 1


class FormatError(ValueError):
    pass


def _torch_load(source):
    """torch.load of a file fullbatch wrote. libtorch's pickler tags the dict's types with
    torch.jit._pickle.restore_type_tag, which PyTorch >= 2.6's default weights_only=True refuses;
    these are our own files, so they are read in full (1.13 accepts the argument too)."""
    return torch.load(source, map_location="cpu", weights_only=False)


def load_weights(path):
    """A weights file (model.pt or an init file) as {name: tensor}."""
    state = _torch_load(path)
    if not isinstance(state, dict):
        raise FormatError(f"{path}: not a dict of tensors")
    return {str(k): v for k, v in state.items()}


def decode_checkpoint(data, origin="<bytes>"):
    """Validates the framing and returns (metadata dict, state dict)."""
    def fail(why):
        raise FormatError(f"checkpoint {origin}: {why}")
    if len(data) < 8 or data[:8] != MAGIC:
        fail("bad magic")
    if len(data) < 20 + 8 + 4:
        fail("truncated")
    version, meta_len = struct.unpack_from("<IQ", data, 8)
    if version != VERSION:
        fail(f"format version {version}, this reader knows {VERSION}")
    if meta_len > len(data) - 20 - 8 - 4:
        fail("metadata runs past the end")
    (payload_len,) = struct.unpack_from("<Q", data, 20 + meta_len)
    payload_at = 28 + meta_len
    if payload_at + payload_len + 4 != len(data):
        fail("length fields do not add up to the file size")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != (zlib.crc32(data[:-4]) & 0xFFFFFFFF):
        fail("crc mismatch")
    meta = json.loads(data[20:20 + meta_len].decode("utf-8"))
    if meta.get("format") != "fullbatch-checkpoint":
        fail("metadata has no format tag")
    state = _torch_load(io.BytesIO(data[payload_at:payload_at + payload_len]))
    return meta, {str(k): v for k, v in state.items()}


def read_checkpoint(path):
    with open(path, "rb") as f:
        return decode_checkpoint(f.read(), path)


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step_{step:06d}.ckpt")


def list_checkpoints(run_dir):
    """{step: path} of the checkpoints in a run directory."""
    folder = os.path.join(run_dir, "checkpoints")
    out = {}
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        m = re.fullmatch(r"step_([0-9]{6,18})\.ckpt", name)
        if m:
            out[int(m.group(1))] = os.path.join(folder, name)
    return dict(sorted(out.items()))


def model_state(state):
    """The "model.*" entries of a checkpoint state, prefix removed (the keys of model.pt)."""
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


def ema_state(state, model):
    """The "ema.<i>" entries mapped back to parameter/buffer names of `model` (a torch.nn.Module
    with fullbatch's registration order: parameters, then buffers)."""
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    out = {}
    for i, n in enumerate(names):
        key = f"ema.{i}"
        if key not in state:
            raise FormatError(f"checkpoint has no '{key}' ({n})")
        out[n] = state[key]
    return out


def momentum_state(state, model):
    """"optim.momentum.<i>" entries by parameter name (missing ones omitted)."""
    out = {}
    for i, (n, _) in enumerate(model.named_parameters()):
        t = state.get(f"optim.momentum.{i}")
        if t is not None:
            out[n] = t
    return out
