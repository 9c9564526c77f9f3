#!/usr/bin/env python3
"""Writes the small seed corpus of each fuzz target into fuzz/corpus/<target>/.

Seeds are valid inputs plus a few hand-mutated ones (truncated, bad magic, bad label, flipped
byte), so both the accepting and every rejecting path are reached from the start. The first byte
of cifar/idx/config seeds selects the target's mode (see fuzz/fuzz_*.cpp).
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def cifar():
    record10 = bytes([3]) + bytes(range(256)) * 12
    record100 = bytes([1, 42]) + bytes(range(256)) * 12
    write("cifar", "cifar10_one", b"\x00" + record10)
    write("cifar", "cifar10_two_exact", b"\x02" + record10 * 2)
    write("cifar", "cifar100_one", b"\x01" + record100)
    write("cifar", "cifar10_truncated", b"\x00" + record10[:-7])
    write("cifar", "cifar10_bad_label", b"\x00" + bytes([10]) + record10[1:])
    write("cifar", "empty", b"\x00")


def idx():
    images = struct.pack(">IIII", 2051, 2, 28, 28) + bytes(range(256)) * 6 + bytes(32)
    labels = struct.pack(">II", 2049, 3) + bytes([0, 9, 4])
    write("idx", "images_two", b"\x01" + images[:16 + 2 * 784])
    write("idx", "labels_three", b"\x00" + labels)
    write("idx", "images_bad_magic", b"\x01" + struct.pack(">I", 2049) + images[4:16 + 784])
    write("idx", "images_wrong_side", b"\x01" + struct.pack(">IIII", 2051, 1, 32, 32) + bytes(1024))
    write("idx", "labels_bad_label", b"\x00" + struct.pack(">II", 2049, 1) + bytes([200]))
    write("idx", "labels_huge_count", b"\x00" + struct.pack(">II", 2049, 0xFFFFFFFF) + bytes(4))
    write("idx", "short_header", b"\x01" + struct.pack(">I", 2051))


def config():
    write("config", "nested.yaml", b"\x00data:\n  name: fashion-mnist\n  size: 256\nhyp:\n"
          b"  optim: {lr: 0.05, nesterov: false}\n  steps: 3\nimpl:\n  threads: 2\n")
    write("config", "dotted.yaml", b"\x00hyp.optim.lr: 0.1\nhyp.scheduler: cosine-4000\nseed: 7\n")
    write("config", "overrides", b"\x01data.batch_size=64\nhyp.grad_clip_norm=inf\n"
          b"+model.width=4\nname=a b: c")
    write("config", "bad_key.yaml", b"\x00hyp:\n  lr: 0.1\n")
    write("config", "bad_type", b"\x01hyp.steps=ten")
    write("config", "negative_lr", b"\x01hyp.optim.lr=-1")
    write("config", "not_a_map.yaml", b"\x00- 1\n- 2\n")
    write("config", "broken.yaml", b"\x00data: {name: [\n")


def checkpoint_bytes(step=3, payload=b"PICKLE", meta=None, version=1):
    meta = meta if meta is not None else {
        "format": "fullbatch-checkpoint", "step": step, "finished": False,
        "config": "seed: 0\n", "metrics": "{\"step\":1}\n"}
    m = json.dumps(meta).encode()
    body = (b"FBCKPT\r\n" + struct.pack("<IQ", version, len(m)) + m +
            struct.pack("<Q", len(payload)) + payload)
    return body + struct.pack("<I", zlib.crc32(body))


def checkpoint():
    good = checkpoint_bytes()
    write("checkpoint", "valid.ckpt", good)
    write("checkpoint", "truncated.ckpt", good[:-9])
    flipped = bytearray(good)
    flipped[30] ^= 0x20
    write("checkpoint", "bit_flip.ckpt", bytes(flipped))
    write("checkpoint", "bad_magic.ckpt", b"FBCKPT\n\n" + good[8:])
    write("checkpoint", "version_2.ckpt", checkpoint_bytes(version=2))
    write("checkpoint", "meta_not_object.ckpt", checkpoint_bytes(meta=[1, 2]))
    write("checkpoint", "negative_step.ckpt", checkpoint_bytes(step=-1))
    write("checkpoint", "trailing_bytes.ckpt", good + b"\x00")


if __name__ == "__main__":
    cifar()
    idx()
    config()
    checkpoint()
