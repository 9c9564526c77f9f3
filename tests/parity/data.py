"""Fashion-MNIST for the parity test, prepared exactly as fullbatch prepares it.

* the first N training images in file order (data.size=N), read from the IDX files in
  /usr/share/datasets/fashion-mnist, as uint8 [N, 1, 28, 28] and int64 labels;
* normalization (data/dataset.cpp normalization_stats, data/block_source.cpp finish_block):
  float32(x) / 255, minus float32(mean), divided by float32(std), mean 0.2860, std 0.3530;
* crop-flip (data/augment.cpp): zero padding `p` of the uint8 images, crop at (dy, dx), optional
  horizontal flip; parameters drawn as randint(0, 2p+1, n) for dx, then dy, then
  bernoulli(0.5) for the flip, from a keyed generator;
* the fixed N x augmentation table (data/block_source.cpp): one draw of rounds*n parameters
  from Stream::kFixedAugment with no keys; sample s = r*n + i is image i with table entry s.
"""
import gzip
import os
import struct

import torch

import fb_rng

FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = (0.2860,), (0.3530,)     # normalization_stats("fashion-mnist")


def _read_idx(path, count):
    """The first `count` items of an IDX file (gzip or plain)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dtype, ndim = (magic >> 8) & 0xFF, magic & 0xFF
        if dtype != 0x08:
            raise ValueError(f"{path}: IDX type {dtype:#x}, expected unsigned byte (0x08)")
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        if count > dims[0]:
            raise ValueError(f"{path}: {count} requested, the file holds {dims[0]}")
        item = 1
        for d in dims[1:]:
            item *= d
        raw = f.read(count * item)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(count, *dims[1:])


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise FileNotFoundError(f"{folder}/{stem}[.gz]")


def load_fashion_mnist(n, folder=FASHION):
    """(uint8 images [n, 1, 28, 28], int64 labels [n]): the first n training images."""
    images = _read_idx(_find(folder, "train-images-idx3-ubyte"), n).view(n, 1, 28, 28).clone()
    labels = _read_idx(_find(folder, "train-labels-idx1-ubyte"), n).to(torch.int64)
    return images, labels


def normalize(images_u8, mean=MEAN, std=STD):
    """x.to(float32).div_(255).sub_(mean).div_(std) with float32 constants (finish_block)."""
    c = len(mean)
    m = torch.tensor(mean, dtype=torch.float64).to(torch.float32).view(1, c, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).to(torch.float32).view(1, c, 1, 1)
    return images_u8.to(torch.float32).div_(255.0).sub_(m).div_(s)


def draw_crop_flip(n, padding, gen):
    """(dx, dy, flip) in fullbatch's fixed draw order."""
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen, dtype=torch.int64)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen, dtype=torch.int64)
    flip = torch.bernoulli(torch.full((n,), 0.5, dtype=torch.float32), generator=gen).to(torch.bool)
    return dx, dy, flip


def apply_crop_flip(images, dx, dy, flip, padding):
    """Per image: zero-pad by `padding`, take the h x w window at (dy, dx), flip horizontally
    when asked (the plain loop, like augment.cpp's apply_crop_flip_reference)."""
    h, w = images.shape[2], images.shape[3]
    padded = torch.nn.functional.pad(images, (padding,) * 4, value=0)
    out = []
    for i in range(images.shape[0]):
        x, y = int(dx[i]), int(dy[i])
        img = padded[i, :, y:y + h, x:x + w]
        out.append(torch.flip(img, [2]) if bool(flip[i]) else img)
    return torch.stack(out).contiguous()


def fixed_augmented_set(images, labels, rounds, seed, padding=4):
    """The reference's N x fixed augmentation (lmdb_datasets.py _create_database): `rounds`
    augmented copies, round r = every image once, each round written in a shuffled order of its
    own, rounds concatenated (the first round augmented too), then read sequentially. The
    crop/flip of (round r, image i) is fullbatch's table entry r*n + i, and the shuffle of each
    round is fullbatch's (its draws reproduced), so the database is the same sample for sample."""
    n = images.shape[0]
    dx, dy, flip = draw_crop_flip(rounds * n, padding, fb_rng.keyed_generator(seed, fb_rng.FIXED_AUGMENT))
    rep = apply_crop_flip(images.repeat(rounds, 1, 1, 1), dx, dy, flip, padding)
    order = fb_rng.fixed_round_order(seed, rounds, n)
    return rep[order], labels.repeat(rounds)[order]
