#!/usr/bin/env python3
"""fullbatch, and the restatement reference_impl.py, against the authors' own code.

The parity test (run_parity.py) checks fullbatch against reference_impl.py, an independent
statement of the reference as REFERENCE_NOTES.md reads it. That restatement is only an oracle if
it agrees with the real code. This script runs each row through three implementations from the
same initial weights, on the same CIFAR-10 images (no augmentation, one block of 128, file
order), and compares the weights after the row's steps:

* fullbatch: `fullbatch init-weights` then `fullbatch train` (one thread);
* the authors' code (JonasGeiping/fullbatchtraining, a checkout given by --authors or
  $FULLBATCH_AUTHORS_DIR): its YAML composed with OmegaConf (no hydra), its own model
  (construct_model) loaded with fullbatch's initial weights, and its own training function
  (fullbatch.training.train) over a loader of the same images, once with 1 thread and once with
  2 (its own floating-point noise);
* the restatement (reference_impl.run), one thread.

    rel(a, b) = ||theta_a - theta_b|| / ||theta_b - theta_0||   (theta_b: the authors' code)

over all parameters: the difference as a fraction of the update. A row agrees when
rel(fullbatch, authors) and rel(restatement, authors) are both at most twice the authors' own
1-vs-2-thread difference (or 1e-6 where that is smaller: one-block rows are often bit-identical
across thread counts). Exit 0 when every row agrees, 1 when one does not, 77 (CTest's skip) when
no checkout of the authors' code or no CIFAR-10 is given.

    /usr/bin/python3 tests/parity/authors_check.py --fullbatch build/fullbatch \\
        --authors /path/to/fullbatchtraining --cifar10 ../shared/data/cifar10 [--model vgg16]

Needs Debian's python3-torch, python3-torchvision and python3-omegaconf. The authors' code is
imported from the checkout, never copied here (it is LGPL).
"""
import argparse
import logging.config  # the authors' get_log() uses logging.config without importing it
import contextlib
import gzip
import io
import os
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SKIP = 77
# Where the project keeps its data next to the repository (absent in a user's clone).
SHARED_CIFAR10 = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "cifar10"))
STEPS, WARMUP, IMAGES, SEED = 2, 2, 128, 0

# Each row: fullbatch's preset and keys (also the restatement's), and what the authors' YAML
# needs on top of its preset to mean the same.
ROWS = [
    ("fbclip", "fbclip", {}, {}),
    ("gradreg, double backprop", "gradreg",
     {"hyp.grad_reg.implementation": "double-backprop"}, {"grad_reg.implementation": "autograd"}),
    ("gradreg, forward differences", "gradreg", {}, {}),
    ("gradreg, central differences", "gradreg",
     {"hyp.grad_reg.implementation": "central-differences"},
     {"grad_reg.implementation": "central-differences"}),
    ("gradreg, forward differences + acc_strength 0.5", "gradreg",
     {"hyp.grad_reg.acc_strength": 0.5}, {"grad_reg.acc_strength": 0.5}),
]

# The authors' model files for fullbatch's model names.
AUTHORS_MODEL = {"resnet18": "resnet18", "vgg16": "vgg16", "densenet121": "densenet121"}


def skip(why):
    print(f"authors_check: {why}; skipped")
    sys.exit(SKIP)


def load_cifar10(folder, n):
    """The first n training images of data_batch_1 as uint8 [n, 3, 32, 32] and int64 labels."""
    path = os.path.join(folder, "data_batch_1.bin")
    opener = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    import torch
    with opener(path, "rb") as f:
        raw = f.read(n * 3073)
    if len(raw) != n * 3073:
        raise SystemExit(f"authors_check: {path} holds fewer than {n} images")
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(n, 3073)
    return t[:, 1:].reshape(n, 3, 32, 32).clone(), t[:, 0].to(torch.int64).clone()


# ---- fullbatch ----------------------------------------------------------------------------------

def fullbatch_keys(model, width, cifar10, keys):
    # NCHW, as the authors' code runs: parity is about the algorithm. fullbatch's default layout
    # for a ResNet of width >= 8 on the CPU is channels-last, which is as close to the float64
    # gradient as NCHW but not bit-close to it (docs/performance.md).
    common = {"seed": SEED, "data.name": "cifar10", "data.path": cifar10, "data.size": IMAGES,
              "data.test_size": 16, "data.augmentations": "none", "model.name": model,
              "model.width": width, "impl.threads": 1, "impl.device": "cpu",
              "impl.channels_last": "false",
              "impl.validate_every_nth_step": 1000, "hyp.steps": STEPS, "hyp.warmup": WARMUP}
    common.update(keys)
    return [f"{k}={v}" for k, v in common.items()]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise SystemExit(f"authors_check: `{' '.join(cmd[:2])}` failed: {p.stdout.strip()[-400:]}")


def fullbatch_side(fb, preset, args, work):
    import fullbatch_io as fio
    init_path = os.path.join(work, "init.pt")
    run([fb, "init-weights", "--preset", preset] + args + ["--out", init_path])
    run_dir = os.path.join(work, "run")
    run([fb, "train", "--quiet", "--preset", preset, "--out", run_dir] + args)
    return fio.load_weights(init_path), fio.load_weights(os.path.join(run_dir, "model.pt"))


# ---- the authors' code --------------------------------------------------------------------------

def import_authors(path):
    """Their package, importable without hydra (only its launcher uses hydra; train() does not)."""
    if not os.path.isdir(os.path.join(path, "fullbatch", "training")):
        skip(f"{path} is not a checkout of JonasGeiping/fullbatchtraining (no fullbatch/training)")
    if "hydra" not in sys.modules:
        try:
            import hydra  # noqa: F401
        except ImportError:
            sys.modules["hydra"] = types.ModuleType("hydra")
    sys.path.insert(0, path)
    import fullbatch as authors
    return authors


def compose(path, model, preset, width, extra, work):
    """cfg.yaml's defaults composed by hand, as hydra would for `hyp=PRESET model=MODEL`."""
    from omegaconf import OmegaConf

    def load(rel):
        c = OmegaConf.load(os.path.join(path, "config", rel))
        if "defaults" in c:
            del c["defaults"]
        return c

    hyp = OmegaConf.merge(load("hyp/_default_hyperparams.yaml"),
                          {"optim": load("hyp/optim/gd.yaml"),
                           "optim_modification": load("hyp/optim_modification/none.yaml")},
                          load(f"hyp/{preset}.yaml"))
    impl = OmegaConf.merge(load("impl/standard.yaml"), {"setup": load("impl/setup/single.yaml")})
    cfg = OmegaConf.create({"data": load("data/CIFAR10.yaml"), "model": load(f"model/{model}.yaml"),
                            "impl": impl, "hyp": hyp, "analysis": load("analysis/none.yaml"),
                            "dryrun": False, "seed": SEED, "name": "authors_check",
                            "original_cwd": work, "job_logging_cfg": {"version": 1}})
    cfg.model.width = width
    cfg.hyp.steps, cfg.hyp.warmup = STEPS, WARMUP
    cfg.impl.validate_every_nth_step = 1000
    cfg.data.batch_size = IMAGES
    for k, v in extra.items():
        OmegaConf.update(cfg.hyp, k, v)
    return cfg


class _FileOrder(object):
    """The training loop calls sampler.set_epoch(step); blocks stay in file order."""

    def __init__(self, n):
        self.n = n

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def registration_order(model, width):
    """fullbatch's tensor names in registration order (parameters, then buffers), from the
    restatement's model, which is built with fullbatch's names in the reference's order."""
    import models
    net = models.build(model, width, 3, 10)
    params = [n for n, _ in net.named_parameters()]
    return params, params + [n for n, _ in net.named_buffers()]


def copy_by_position(module, ours, origin):
    """fullbatch's tensors, a list of (name, tensor) in registration order, into `module`, each
    checked for shape: the two models name their layers differently but build them in one order."""
    import torch
    theirs = list(module.named_parameters()) + list(module.named_buffers())
    if len(ours) != len(theirs):
        raise SystemExit(f"authors_check: {origin}: {len(ours)} tensors, the authors' model has "
                         f"{len(theirs)}")
    with torch.no_grad():
        for (n_ours, t_ours), (n_theirs, t_theirs) in zip(ours, theirs):
            if tuple(t_ours.shape) != tuple(t_theirs.shape):
                raise SystemExit(f"authors_check: {origin}: {n_ours} {tuple(t_ours.shape)} against "
                                 f"the authors' {n_theirs} {tuple(t_theirs.shape)}")
            t_theirs.copy_(t_ours)
    return [n for n, _ in theirs]


def authors_model(authors, cfg, width):
    """Their construct_model at fullbatch's width. Both of their CIFAR models ignore model.width
    (REFERENCE_NOTES.md item 13), which would leave only width 64, too slow for this check on two
    cores. Their code is not edited; for the construction only, (1) their ResNet's width test
    `isinstance(block, BasicBlock)`, made on the class (always False), is answered as meant (the
    class itself counts), and (2) their VGG's channel table is scaled by width / 64, its 512-input
    CIFAR head resized to match (both models' weights are then overwritten by fullbatch's)."""
    import builtins
    import torch
    resnets, vgg = authors.models.resnets, authors.models.vgg
    saved = dict(vgg.cfg)
    resnets.isinstance = lambda obj, cls: obj is cls or builtins.isinstance(obj, cls)
    vgg.cfg = {k: [c if c == "M" else c * width // 64 for c in v] for k, v in saved.items()}
    try:
        model = authors.models.construct_model(cfg.model, cfg.data.channels, cfg.data.classes)
    finally:
        del resnets.isinstance
        vgg.cfg = saved
    if builtins.isinstance(model, vgg.VGG) and cfg.model.head == "CIFAR":
        model.classifier = torch.nn.Linear(512 * width // 64, cfg.data.classes)
    return model


def authors_side(authors, cfg, width, init, order, images, labels, threads):
    import torch
    torch.set_num_threads(threads)
    from torch.utils.data import DataLoader, TensorDataset
    mean = torch.tensor(list(cfg.data.mean), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(list(cfg.data.std), dtype=torch.float32).view(1, 3, 1, 1)
    x = images.to(torch.float32).div(255).sub(mean).div(std)   # ToTensor, then Normalize
    data = TensorDataset(x, labels)
    loader = DataLoader(data, batch_size=cfg.data.batch_size, sampler=_FileOrder(len(data)))
    model = authors_model(authors, cfg, width)
    copy_by_position(model, [(n, init[n]) for n in order], "init.pt")
    setup = {"device": torch.device("cpu"), "dtype": torch.float32}
    model = authors.models.prepare_model(model, cfg, 0, setup)
    with contextlib.redirect_stdout(io.StringIO()):
        authors.training.train(model, loader, loader, setup, cfg)
    values = list(model.parameters()) + list(model.buffers())
    return dict(zip(order, [v.detach().clone() for v in values]))  # under fullbatch's names


# ---- the restatement ----------------------------------------------------------------------------

def restatement_side(model, width, preset, keys, init, images, labels, mean, std):
    import torch
    import models
    import reference_impl as ref
    import run_parity
    torch.set_num_threads(1)
    h = dict(run_parity.REF_PRESETS[preset])
    h.update(keys)
    h.update({"hyp.steps": STEPS, "hyp.warmup": WARMUP, "data.mean": mean, "data.std": std})
    net = models.build(model, width, 3, 10)
    models.load_fullbatch_weights(net, init)
    return ref.run(net, images, labels, h, STEPS)


# ---- comparison ---------------------------------------------------------------------------------

def rel(a, b, start):
    """||a - b|| / ||b - start|| over the parameters (a, b, start: lists of tensors)."""
    num = sum((x.double() - y.double()).norm().item() ** 2 for x, y in zip(a, b))
    den = sum((y.double() - s.double()).norm().item() ** 2 for y, s in zip(b, start))
    return 0.0 if num == 0 else (float("inf") if den == 0 else (num / den) ** 0.5)


def fmt(v):
    return "0" if v == 0 else f"{v:.1e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fullbatch", required=True, help="the fullbatch binary")
    ap.add_argument("--authors", default=os.environ.get("FULLBATCH_AUTHORS_DIR", ""),
                    help="checkout of JonasGeiping/fullbatchtraining ($FULLBATCH_AUTHORS_DIR)")
    ap.add_argument("--cifar10", default=os.environ.get("FULLBATCH_CIFAR10_DIR", SHARED_CIFAR10),
                    help="CIFAR-10 binary folder ($FULLBATCH_CIFAR10_DIR; default: the project's "
                    "../shared/data/cifar10)")
    ap.add_argument("--model", default="resnet18", choices=sorted(AUTHORS_MODEL))
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--rows", default="", help="comma-separated row numbers (1-based), default all")
    args = ap.parse_args()
    if not args.authors:
        skip("no checkout of the authors' code (give --authors DIR or set FULLBATCH_AUTHORS_DIR)")
    if not args.cifar10 or not os.path.isdir(args.cifar10):
        skip(f"no CIFAR-10 folder (--cifar10 '{args.cifar10}')")
    try:
        import omegaconf  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        skip(f"{e.name} is missing (apt-get install python3-torch python3-torchvision "
             "python3-omegaconf)")
    authors = import_authors(os.path.abspath(args.authors))
    import torch
    images, labels = load_cifar10(args.cifar10, IMAGES)
    chosen = [int(i) - 1 for i in args.rows.split(",") if i] or range(len(ROWS))
    params, order = registration_order(args.model, args.width)

    print(f"{args.model} width {args.width}, {IMAGES} CIFAR-10 training images (one block, no "
          f"augmentation), {STEPS} steps, warm-up {WARMUP}; rel = ||theta - theta_authors|| / "
          f"||theta_authors - theta_0||")
    header = ("| row | fullbatch vs authors | restatement vs authors | authors 1 vs 2 threads "
              "| limit | verdict |")
    print(header)
    print("|---|---:|---:|---:|---:|---|")
    failed = 0
    for i in chosen:
        name, preset, keys, extra = ROWS[i]
        with tempfile.TemporaryDirectory() as work:
            fb_args = fullbatch_keys(args.model, args.width, args.cifar10,
                                     {k: v for k, v in keys.items()})
            init, ours = fullbatch_side(args.fullbatch, preset, fb_args, work)
            cfg = compose(args.authors, AUTHORS_MODEL[args.model], preset, args.width, extra, work)
            one = authors_side(authors, cfg, args.width, init, order, images, labels, threads=1)
            two = authors_side(authors, cfg, args.width, init, order, images, labels, threads=2)
            restated = restatement_side(args.model, args.width, preset, keys, init, images, labels,
                                        tuple(cfg.data.mean), tuple(cfg.data.std))
        start, theirs = [init[n] for n in params], [one[n] for n in params]
        noise = rel([two[n] for n in params], theirs, start)
        d_fb = rel([ours[n] for n in params], theirs, start)
        d_rs = rel([restated[n] for n in params], theirs, start)
        limit = max(2 * noise, 1e-6)
        ok = d_fb <= limit and d_rs <= limit
        failed += not ok
        print(f"| {name} | {fmt(d_fb)} | {fmt(d_rs)} | {fmt(noise)} | {fmt(limit)} | "
              f"{'agrees' if ok else 'DIFFERS'} |", flush=True)
    print(f"{len(chosen) - failed} agree, {failed} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
