#!/usr/bin/env python3
"""Writes random images in CIFAR-10's binary layout (data_batch_1..5.bin, test_batch.bin).

For timing where the real files cannot go (the GPU machine takes at most 64 MiB with a call; the
gzip-compressed CIFAR-10 is 174 MB): a full-batch step's cost does not depend on the pixels.
Never for accuracy. Needs only the standard library.
  python3 bench/fake_cifar10.py OUTDIR [seed]
"""
import os
import random
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: fake_cifar10.py OUTDIR [seed]")
    out = sys.argv[1]
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) == 3 else 0)
    os.makedirs(out, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        records = bytearray()
        for _ in range(10000):
            records.append(rng.randrange(10))  # label, then 3x32x32 pixels
            records += rng.randbytes(3072)
        with open(os.path.join(out, name), "wb") as f:
            f.write(records)
    with open(os.path.join(out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"]) + "\n")
    print(f"fake_cifar10.py: wrote {len(names)} files of random images to {out}")


if __name__ == "__main__":
    main()
