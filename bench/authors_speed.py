#!/usr/bin/python3
"""fullbatch's full-batch and regularized steps against the authors' own training loop, timed side by side.

The yardstick of issue 26: the authors' code (JonasGeiping/fullbatchtraining, a checkout given by
--authors or $FULLBATCH_AUTHORS_DIR) runs its own `fullbatch.training.train` with its own model
(construct_model, prepare_model), its own optimizer and its own full-batch loop; only the data
comes from a DataLoader over the same CIFAR-10 images that fullbatch reads (the authors' CIFAR
loader wants the Python pickles, this project has the binary files), augmented per image with
torchvision's RandomCrop(32, padding=4) and RandomHorizontalFlip, then normalized, as their data
pipeline does, in the main process (no loader workers: fullbatch has none either, and on two
cores workers would take the cores the step needs). Each of their steps is timed around their
optimizer.step(closure), which holds the whole full-gradient pass, the gradient modification and
the update; evaluation is outside it. fullbatch's side is `fullbatch bench` with the same keys
(its full-batch step and its regularized step, evaluation excluded).

Rows: "full batch" is the authors' preset fb1 against `fullbatch bench --preset fb1`; "regularized"
is their preset gradreg (block_strength 0.5, forward differences) against the regularized step of
the same bench (block_strength 0.5, forward differences). Both sides use float32, the same number
of threads and the same images, each its default memory layout (the authors' NCHW; fullbatch's
impl.channels_last=auto, channels-last for a ResNet from width 8 on the CPU, printed per row); the
first `warmup` steps of each side are not timed.

    /usr/bin/python3 bench/authors_speed.py --fullbatch build/fullbatch \\
        --authors /path/to/fullbatchtraining [--cifar10 ../shared/data/cifar10] [--width 16] \\
        [--images 2560] [--threads 2] [--steps 3] [--warmup 1] [--repeats 3]

Prints one Markdown row per repeat (back to back: fullbatch, then the authors' two presets) and
the medians. Exit 77 (CTest's skip) without a checkout of the authors' code, CIFAR-10 or Debian's
python3-torch, python3-torchvision and python3-omegaconf. The authors' code is imported from the
checkout, never copied here (it is LGPL).
"""
import argparse
import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))

SKIP = 77
ROWS = (("full batch", "fb1", "full_batch"), ("regularized (forward differences)", "gradreg",
                                               "regularized"))


def skip(why):
    print(f"authors_speed: {why}; skipped")
    sys.exit(SKIP)


def fullbatch_rates(args):
    """images/s of fullbatch's full-batch and regularized steps, from one `fullbatch bench`."""
    cmd = [args.fullbatch, "bench", "--preset", "fb1", "data.name=cifar10",
           f"data.path={args.cifar10}", f"data.size={args.images}", "model.name=resnet18",
           f"model.width={args.width}", f"impl.threads={args.threads}", "impl.device=cpu",
           "hyp.grad_reg.implementation=forward-differences", f"steps={args.steps}",
           f"warmup={args.warmup}", "parts=reg", "reg_strength=0.5"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise SystemExit(f"authors_speed: `fullbatch bench` failed: {p.stdout.strip()[-400:]}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    rates = {key: result[key]["images_per_s"] for _, _, key in ROWS}
    rates["layout"] = "channels-last" if result.get("impl.channels_last") else "NCHW"
    return rates


class AugmentedImages(object):
    """uint8 CIFAR images, augmented and normalized per image as the authors' pipeline does."""

    def __init__(self, images, labels, mean, std):
        import torch
        import torchvision.transforms as T
        self.images, self.labels = images, labels
        self.augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.augment(self.images[i]).to(dtype=self.mean.dtype).div(255)
        return x.sub(self.mean).div(self.std), self.labels[i]


def authors_rate(authors, ac, args, preset, images, labels):
    """images/s of the authors' step for `preset`: the median of their timed optimizer steps."""
    import torch
    from torch.utils.data import DataLoader
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        cfg = ac.compose(args.authors, "resnet18", preset, args.width, {}, work)
    cfg.hyp.steps = args.warmup + args.steps
    cfg.hyp.warmup = 0
    cfg.impl.validate_every_nth_step = 10 ** 6
    cfg.data.batch_size = 128
    mean, std = tuple(cfg.data.mean), tuple(cfg.data.std)
    train = DataLoader(AugmentedImages(images, labels, mean, std), batch_size=128,
                       sampler=ac._FileOrder(len(labels)))
    # Their loop validates after its first and last step; 16 images keep that out of the way
    # (and it is outside the timed optimizer steps anyway).
    valid = DataLoader(AugmentedImages(images[:16], labels[:16], mean, std), batch_size=16)
    model = ac.authors_model(authors, cfg, args.width)
    setup = {"device": torch.device("cpu"), "dtype": torch.float32}
    model = authors.models.prepare_model(model, cfg, 0, setup)

    times = []
    module = authors.training.training
    original = module.optim_interface

    def timed_interface(model, cfg_hyp):
        optimizer, scheduler = original(model, cfg_hyp)
        step = optimizer.step

        def timed_step(closure=None):
            start = time.perf_counter()
            out = step(closure)
            times.append(time.perf_counter() - start)
            return out

        optimizer.step = timed_step
        return optimizer, scheduler

    module.optim_interface = timed_interface
    # torch warns that optimizer.step was replaced after the scheduler wrapped it: that is the timer.
    warnings.filterwarnings("ignore", message=re.escape("Seems like `optimizer.step()` has been"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            authors.training.train(model, train, valid, setup, cfg)
    finally:
        module.optim_interface = original
    if len(times) != args.warmup + args.steps:
        raise SystemExit(f"authors_speed: the authors' loop took {len(times)} steps, "
                         f"expected {args.warmup + args.steps}")
    return len(labels) / statistics.median(times[args.warmup:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fullbatch", required=True, help="the fullbatch binary")
    ap.add_argument("--authors", default=os.environ.get("FULLBATCH_AUTHORS_DIR", ""),
                    help="checkout of JonasGeiping/fullbatchtraining ($FULLBATCH_AUTHORS_DIR)")
    ap.add_argument("--cifar10", default=os.environ.get("FULLBATCH_CIFAR10_DIR", ""),
                    help="CIFAR-10 binary folder ($FULLBATCH_CIFAR10_DIR)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--images", type=int, default=2560)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not args.authors:
        skip("no checkout of the authors' code (give --authors DIR or set FULLBATCH_AUTHORS_DIR)")
    if not args.cifar10 or not os.path.isdir(args.cifar10):
        skip(f"no CIFAR-10 folder (--cifar10 '{args.cifar10}')")
    for bad, why in ((args.images < 128, "--images must be at least 128"),
                     (args.steps < 1, "--steps must be at least 1"),
                     (args.warmup < 0, "--warmup must be >= 0"),
                     (args.repeats < 1, "--repeats must be at least 1"),
                     (args.threads < 1, "--threads must be at least 1")):
        if bad:
            raise SystemExit(f"authors_speed: {why}")
    try:
        import omegaconf  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        skip(f"{e.name} is missing (apt-get install python3-torch python3-torchvision "
             "python3-omegaconf)")
    import authors_check as ac
    args.authors = os.path.abspath(args.authors)
    authors = ac.import_authors(args.authors)
    images, labels = ac.load_cifar10(args.cifar10, args.images)

    print(f"ResNet-18 width {args.width}, {args.images} CIFAR-10 images in blocks of 128, "
          f"{args.threads} threads, float32, crop-flip augmentation; median of {args.steps} "
          f"steps after {args.warmup} untimed; images/s")
    print("| repeat | full batch: fullbatch | authors | ratio | regularized: fullbatch | authors "
          "| ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios = {key: [] for _, _, key in ROWS}
    for r in range(args.repeats):
        ours = fullbatch_rates(args)
        cells = []
        for _, preset, key in ROWS:
            theirs = authors_rate(authors, ac, args, preset, images, labels)
            ratios[key].append(ours[key] / theirs)
            cells += [f"{ours[key]:.0f}", f"{theirs:.0f}", f"{ours[key] / theirs:.2f}x"]
        print(f"| {r + 1} | " + " | ".join(cells) + f" |  (fullbatch in {ours['layout']})",
              flush=True)
    for name, _, key in ROWS:
        print(f"{name}: median ratio {statistics.median(ratios[key]):.2f}x "
              f"({', '.join(f'{x:.2f}x' for x in ratios[key])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
