#!/usr/bin/python3
"""One full-batch step in PyTorch eager, timed: the yardstick for `fullbatch bench`.

Two modes, both the same computation as fullbatch's full-batch step (ResNet with shortcut C,
blocks of data.batch_size, loss / num_blocks accumulated into .grad, then one Nesterov SGD step):

  mode=reference  the way the paper's Python reference feeds data: a Dataset whose __getitem__
                  augments one image at a time (RandomCrop(32, padding=4), RandomHorizontalFlip,
                  ToTensor, Normalize, written out by hand since torchvision is not installed),
                  batched by torch.utils.data.DataLoader(batch_size, shuffle=False, drop_last=True).
  mode=optimized  a hand-optimized eager loop: uint8 images resident as one tensor, one gather
                  for crop-and-flip of a whole block, normalize on the block, channels-last when
                  asked, torch.set_num_threads(impl.threads). No DataLoader.

Arguments are key=value like `fullbatch bench`: data.name data.path data.size data.batch_size
model.name model.width impl.threads impl.device impl.channels_last impl.mixed_precision
steps warmup mode
num_workers. The last line printed is JSON with images_per_s of the full-batch step.
Runs with Debian's python3-torch (same libtorch as the C++ build): /usr/bin/python3.
"""
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {
    "data.name": "cifar10",
    "data.path": "",
    "data.size": "0",
    "data.batch_size": "128",
    "model.name": "resnet18",
    "model.width": "64",
    "impl.threads": "0",
    "impl.device": "cpu",
    "impl.channels_last": "false",
    "impl.mixed_precision": "none",
    "steps": "3",
    "warmup": "1",
    "mode": "reference",
    "num_workers": "0",
    "seed": "0",
}


def parse_args(argv):
    args = dict(DEFAULTS)
    for item in argv:
        key, sep, value = item.lstrip("-").partition("=")
        if not sep:
            sys.exit(f"reference_step.py: expected key=value, got '{item}'")
        if key not in args:
            sys.exit(f"reference_step.py: unknown argument '{key}' (known: {', '.join(args)})")
        args[key] = value
    if args["mode"] not in ("reference", "optimized"):
        sys.exit("reference_step.py: mode must be reference or optimized")
    if args["impl.mixed_precision"] not in ("none", "bf16", "fp16"):
        sys.exit("reference_step.py: impl.mixed_precision must be none, bf16 or fp16")
    if args["impl.channels_last"].lower() == "auto":
        sys.exit("reference_step.py: impl.channels_last must be true or false here")
    if args["model.name"] != "resnet18":
        sys.exit("reference_step.py: only model.name=resnet18 is written out here")
    return args


# ---- data: the same files and subset as fullbatch's loaders -------------------------------------

def open_maybe_gz(path):
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    return open(path, "rb")


def load_cifar10(path):
    def read(names):
        raw = b"".join(open_maybe_gz(os.path.join(path, n)).read() for n in names)
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
        return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
    return read([f"data_batch_{i}.bin" for i in range(1, 6)])


def load_fashion_mnist(path):
    def idx(name, offset):
        return np.frombuffer(open_maybe_gz(os.path.join(path, name)).read()[offset:], dtype=np.uint8)
    images = idx("train-images-idx3-ubyte", 16).reshape(-1, 1, 28, 28)
    return images, idx("train-labels-idx1-ubyte", 8).astype(np.int64)


def load_train(args):
    name = args["data.name"]
    if name == "cifar10":
        images, labels = load_cifar10(args["data.path"] or "/usr/share/datasets/cifar10")
    elif name == "fashion-mnist":
        images, labels = load_fashion_mnist(args["data.path"] or "/usr/share/datasets/fashion-mnist")
    else:
        sys.exit(f"reference_step.py: data.name {name} not supported here")
    n = int(args["data.size"]) or len(labels)
    images, labels = torch.from_numpy(images[:n].copy()), torch.from_numpy(labels[:n].copy())
    scaled = images.double() / 255
    mean = scaled.mean(dim=(0, 2, 3)).tolist()
    std = scaled.std(dim=(0, 2, 3)).tolist()
    return images, labels, mean, std


class PerImageDataset(torch.utils.data.Dataset):
    """The reference's input pipeline: every image augmented on its own in __getitem__."""

    def __init__(self, images, labels, mean, std, padding=4):
        self.images, self.labels, self.padding = images, labels, padding
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i].float().div(255)  # ToTensor
        _, h, w = img.shape
        p = self.padding
        padded = F.pad(img, (p, p, p, p))  # RandomCrop(size, padding=p): zero padding, then crop
        top = int(torch.randint(0, 2 * p + 1, (1,)))
        left = int(torch.randint(0, 2 * p + 1, (1,)))
        img = padded[:, top:top + h, left:left + w]
        if torch.rand(1) < 0.5:  # RandomHorizontalFlip
            img = img.flip(-1)
        return (img - self.mean) / self.std, self.labels[i]  # Normalize


def crop_flip_block(x, padding, gen):
    """All of a block's crops and flips as one gather over the zero-padded block."""
    n, c, h, w = x.shape
    p = padding
    padded = F.pad(x, (p, p, p, p)).reshape(n, c, -1)
    dx = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=gen)
    dy = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=gen)
    flip = torch.rand(n, 1, 1, generator=gen) < 0.5
    col = torch.arange(w).view(1, 1, w)
    col = torch.where(flip, w - 1 - col, col)
    rows = torch.arange(h).view(1, h, 1)
    index = ((dy + rows) * (w + 2 * p) + dx + col).view(n, 1, h * w).expand(n, c, h * w)
    return padded.gather(2, index).view(n, c, h, w)


# ---- model: fullbatch's CIFAR ResNet-18 (shortcut C) --------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None
        if stride != 1 or cin != planes:
            pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
            self.shortcut = nn.Sequential(pool, nn.Conv2d(cin, planes, 1, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet18(nn.Module):
    def __init__(self, width, in_channels, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for stage in range(4):
            planes = width << stage
            blocks = [BasicBlock(cin, planes, 2 if stage > 0 else 1), BasicBlock(planes, planes, 1)]
            layers.append(nn.Sequential(*blocks))
            cin = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


# ---- the step -----------------------------------------------------------------------------------

def reference_blocks(images, labels, mean, std, batch_size, workers):
    loader = torch.utils.data.DataLoader(PerImageDataset(images, labels, mean, std),
                                         batch_size=batch_size, shuffle=False, drop_last=True,
                                         num_workers=workers)
    for x, y in loader:
        yield x, y


def optimized_blocks(images, labels, mean, std, batch_size, gen, channels_last):
    c = images.shape[1]
    scale = (1.0 / (255.0 * torch.tensor(std))).view(1, c, 1, 1)
    shift = (-torch.tensor(mean) / torch.tensor(std)).view(1, c, 1, 1)
    for begin in range(0, len(labels) - batch_size + 1, batch_size):
        x = crop_flip_block(images[begin:begin + batch_size], 4, gen)
        x = torch.addcmul(shift, x.float(), scale)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[begin:begin + batch_size]


def main():
    args = parse_args(sys.argv[1:])
    threads = int(args["impl.threads"]) or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(int(args["seed"]))
    device = torch.device(args["impl.device"] if args["impl.device"] != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"reference_step.py: impl.device={args['impl.device']} but this PyTorch "
                 f"({torch.__version__}) sees no CUDA device")
    channels_last = args["impl.channels_last"].lower() in ("1", "true", "yes", "on")
    batch_size = int(args["data.batch_size"])
    precision = args["impl.mixed_precision"]
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    images, labels, mean, std = load_train(args)
    model = ResNet18(int(args["model.width"]), images.shape[1], 10).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                                nesterov=True)
    gen = torch.Generator().manual_seed(int(args["seed"]))
    num_blocks = len(labels) // batch_size

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=False)
        if args["mode"] == "reference":
            blocks = reference_blocks(images, labels, mean, std, batch_size, int(args["num_workers"]))
        else:
            blocks = optimized_blocks(images, labels, mean, std, batch_size, gen, channels_last)
        for x, y in blocks:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # torch.autocast around the forward only, as the reference's AMP does.
            with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                loss = F.cross_entropy(model(x), y)
            (loss / num_blocks).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(int(args["warmup"])):
        step()
    times, cpu_times = [], []
    for _ in range(int(args["steps"])):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    med = statistics.median(times)
    images_per_step = num_blocks * batch_size
    result = {"implementation": "python-" + args["mode"], "torch_version": torch.__version__,
              "device": str(device), "threads": torch.get_num_threads(),
              "data.name": args["data.name"], "data.size": len(labels),
              "model.width": int(args["model.width"]), "impl.channels_last": channels_last,
              "impl.mixed_precision": precision,
              "num_workers": int(args["num_workers"]) if args["mode"] == "reference" else 0,
              "step_s_median": med, "step_s_best": min(times), "steps_timed": len(times),
              "cpu_s_median": statistics.median(cpu_times),
              "images": images_per_step, "images_per_s": images_per_step / med}
    print(f"python {args['mode']}: {med:.3f} s per full-batch step, "
          f"{images_per_step / med:.1f} images/s ({torch.get_num_threads()} threads)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
