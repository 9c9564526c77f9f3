#!/usr/bin/env python3
"""Step-for-step parity of fullbatch with an independent Python statement of the reference
implementation (reference_impl.py), from the same initial weights.

For every row: `fullbatch init-weights` writes the run's initial parameters and buffers,
`fullbatch train` runs k steps with a checkpoint after each, reference_impl.py runs the same k
steps in PyTorch from the same weights, and the two states are compared after steps 1, 2, 5:

    rel = ||theta_ours_k - theta_ref_k|| / ||theta_ours_k - theta_0||

globally over all parameters (p_glob) and as the largest per-tensor value (p_max), and likewise
over the floating BatchNorm buffers relative to their own change (bn_glob, bn_max), and over the
EMA copy where one is kept (ema). A row passes when every global value is within its tolerance
after steps 1 and 2 (1e-3; finite-difference rows 1e-2), for rows without a finite difference
within LATE_TOL (or 10x the row's measured noise floor) after step 5 (a gross check: rounding
differences grow chaotically), and the lr of every step equals the reference schedule's (this
catches the schedule's peak hold, which acts from step W+1 on, exactly).
Each row runs exactly max(k) steps (hyp.steps = 5, or 2 for the slow rows in --quick), so the
cosine period is that short too; both sides get the same hyp.steps.

    /usr/bin/python3 tests/parity/run_parity.py --fullbatch build/fullbatch [--rows a,b] [--quick]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import data as fb_data  # noqa: E402
import fb_rng  # noqa: E402
import fullbatch_io as fio  # noqa: E402
import models  # noqa: E402
import reference_impl as ref  # noqa: E402

TOL = 1e-3            # rows without a finite difference, after steps 1 and 2
LATE_TOL = 1e-1       # after step 5, a gross check only: rounding differences grow chaotically
                      # (the reference against itself summed in another order reaches 1e-2 by
                      # step 5 on some rows, ~0.5 with finite differences)
LR_TOL = 1e-9         # the lr of every step, fullbatch's metrics.jsonl vs the reference's schedule
SEED = 0
WIDTH = 4

# The reference's own hyper-parameter files (config/hyp/*.yaml, REFERENCE_NOTES.md item 12), as
# fullbatch keys. The Python side starts from reference_impl.DEFAULTS (the reference's defaults)
# plus these, and never from fullbatch's resolved config: a default that differs shows up.
REF_PRESETS = {
    "fb1": {"hyp.optim.lr": 0.1, "hyp.warmup": 5, "hyp.steps": 300, "hyp.scheduler": "cosine-decay"},
    "fb2": {"hyp.optim.lr": 0.4, "hyp.warmup": 400, "hyp.steps": 3000, "hyp.scheduler": "cosine-4000"},
    "base_sgd": {"hyp.optim.lr": 0.1, "hyp.warmup": 5, "hyp.steps": 300,
                 "hyp.scheduler": "cosine-decay", "hyp.train_stochastic": True, "hyp.shuffle": True},
}
REF_PRESETS["fbclip"] = dict(REF_PRESETS["fb2"], **{"hyp.grad_clip": 0.25})
REF_PRESETS["gradreg"] = dict(REF_PRESETS["fbclip"], **{
    "hyp.optim.lr": 0.8, "hyp.grad_reg.block_strength": 0.5, "hyp.grad_reg.eps": 1e-2,
    "hyp.grad_reg.implementation": "forward-differences"})
REF_PRESETS["sgd_replacement"] = dict(REF_PRESETS["base_sgd"], **{"hyp.sample_with_replacement": True})
REF_PRESETS["fb_noise_additive"] = dict(REF_PRESETS["fb1"], **{"hyp.grad_noise.additive": 3e-4})
REF_PRESETS["fb_noise_multiplicative"] = dict(REF_PRESETS["fb1"], **{"hyp.grad_noise.multiplicative": 1.0})

SHRINK = {"hyp.warmup": 2}        # presets: warm-up 0, b/2, then the peak (held two steps), decay
PLAIN = {"hyp.warmup": 0}         # feature rows: no warm-up, so step 1 already moves the weights


def row(name, what, preset=None, keys=None, n=256, quick_n=None, ks=(1, 2, 5), quick_ks=None,
        model="resnet18", fd_tol=None, fixed_rounds=0):
    return {"name": name, "what": what, "preset": preset, "keys": dict(keys or {}), "n": n,
            "quick_n": quick_n or n, "ks": ks, "quick_ks": quick_ks or ks, "model": model,
            "fd_tol": fd_tol, "fixed_rounds": fixed_rounds}


GRADREG = dict(SHRINK)
ROWS = [
    row("resnet18", "plain GD, ResNet-18", keys=PLAIN, n=512),
    row("fb1", "preset fb1 (warm-up 2, 5 steps)", "fb1", SHRINK, n=512),
    row("fb2", "preset fb2 (warm-up 2, cosine-4000)", "fb2", SHRINK, n=512),
    row("fbclip", "preset fbclip (clip 0.25)", "fbclip", SHRINK, n=512),
    row("gradreg_fwd", "preset gradreg, forward differences", "gradreg", GRADREG, n=512,
        fd_tol=1e-2),
    row("gradreg_central", "gradreg, central differences", "gradreg",
        dict(GRADREG, **{"hyp.grad_reg.implementation": "central-differences"}), n=512, fd_tol=1e-2),
    row("gradreg_dbp", "gradreg, double backprop", "gradreg",
        dict(GRADREG, **{"hyp.grad_reg.implementation": "double-backprop"}), n=512),
    row("acc_strength", "gradreg + acc_strength 0.5, double backprop", "gradreg",
        dict(GRADREG, **{"hyp.grad_reg.implementation": "double-backprop",
                         "hyp.grad_reg.acc_strength": 0.5}), n=512, quick_ks=(1, 2)),
    row("acc_strength_fwd", "gradreg + acc_strength 0.5, forward differences", "gradreg",
        dict(GRADREG, **{"hyp.grad_reg.acc_strength": 0.5}), n=512, quick_ks=(1, 2), fd_tol=1e-2),
    row("sub_batch", "sub_batch 48 of 128 (reference: 2 chunks of 64)",
        keys=dict(PLAIN, **{"hyp.sub_batch": 48}), n=512),
    row("sub_batch_default", "batch 256, sub_batch unset (reference default 128)",
        keys=dict(PLAIN, **{"data.batch_size": 256}), n=512),
    row("batch_clip", "per-block clip 0.2", keys=dict(PLAIN, **{"hyp.batch_clip": 0.2}), n=512),
    row("noise_add", "preset fb_noise_additive (3e-4)", "fb_noise_additive", SHRINK, n=512),
    row("noise_mult", "preset fb_noise_multiplicative (1)", "fb_noise_multiplicative", SHRINK, n=512),
    row("label_smoothing", "label smoothing 0.1", keys=dict(PLAIN, **{"hyp.label_smoothing": 0.1}),
        n=512),
    row("ema", "EMA of weights and buffers (default momentum)",
        keys=dict(PLAIN, **{"hyp.evaluate_ema": True}), n=512),
    row("ema_sgd", "EMA in SGD mode (per epoch)", "base_sgd",
        dict(SHRINK, **{"hyp.evaluate_ema": True}), n=512),
    row("fixed_aug", "2 x fixed crop-flip, each round shuffled, two blocks per round",
        keys=PLAIN, n=256, quick_n=128, fixed_rounds=2),
    row("sgd", "preset base_sgd (shuffled)", "base_sgd", SHRINK, n=512),
    row("sgd_replacement", "preset sgd_replacement", "sgd_replacement", SHRINK, n=512),
    # One block: ResNet-50/DenseNet-121 at width 4 are so ill-conditioned that a rounding-level
    # difference in the block average (1e-7) is amplified to ~3e-3 by step 2 (reference vs
    # itself with the weighted-sum form of the mean); with one block there is no average.
    row("resnet50", "plain GD, ResNet-50, one block", keys=PLAIN, n=128, quick_ks=(1, 2),
        model="resnet50"),
    row("vgg16", "plain GD, VGG-16 (BN)", keys=PLAIN, n=512, model="vgg16"),
    row("densenet121", "plain GD, DenseNet-121, one block", keys=PLAIN, n=128, quick_ks=(1, 2),
        model="densenet121"),
]
for r in ROWS:
    r["quick_n"] = min(r["quick_n"], 256)


def per_size_keys(r, n):
    """Keys that depend on the row's image count: the fixed-augmentation row cuts each round into
    two blocks, so the per-round shuffle decides what a block holds."""
    if r["fixed_rounds"]:
        return {"data.batch_size": n // 2}
    return {}


# ---- fullbatch side ----------------------------------------------------------------------------

def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def overrides(r, n, steps):
    """fullbatch's command-line keys of a row (common part + the row's keys)."""
    keys = {"seed": SEED, "data.name": "fashion-mnist", "data.size": n, "data.test_size": 16,
            "data.augmentations": "none", "model.name": r["model"], "model.width": WIDTH,
            "impl.threads": 1, "impl.device": "cpu", "impl.validate_every_nth_step": 1000,
            "impl.checkpoint.save_every_nth_step": 1, "impl.checkpoint.keep": 10}
    keys.update({k: v for k, v in r["keys"].items() if not k.startswith("ref.")})
    keys.update(per_size_keys(r, n))
    keys["hyp.steps"] = steps
    if r["fixed_rounds"]:
        keys["data.fixed_augmentations"] = r["fixed_rounds"]
        keys["data.augmentations"] = "crop-flip"
    out = ["--preset", r["preset"]] if r["preset"] else []
    return out + [f"{k}={fmt(v)}" for k, v in keys.items()]


def run_cmd(cmd, log):
    t0 = time.time()
    p = subprocess.run(["nice"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + f"\n{p.stdout}\n[rc {p.returncode}, {time.time() - t0:.1f} s]\n")
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-3:])
        raise RuntimeError(f"`{' '.join(cmd[:2])} ...` failed (rc {p.returncode}): {tail}")
    return p.stdout


def init_weights(fb, args, folder, log):
    """`fullbatch init-weights ARGS --out folder/init.pt`: the run's parameters and buffers before
    its first step (the keys of model.pt)."""
    path = os.path.join(folder, "init.pt")
    run_cmd([fb, "init-weights"] + args + ["--out", path], log)
    return fio.load_weights(path)


def fullbatch_lrs(run_dir):
    """lr of each step (0-based) from metrics.jsonl."""
    lrs = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if "step" in m and "lr" in m:
                lrs[int(m["step"]) - 1] = m["lr"]
    return lrs


# ---- reference side ----------------------------------------------------------------------------

def reference_hyp(r, n, steps):
    h = dict(REF_PRESETS.get(r["preset"], {}))
    h.update(r["keys"])
    h.update(per_size_keys(r, n))
    h["hyp.steps"] = steps
    h["data.mean"], h["data.std"] = fb_data.MEAN, fb_data.STD
    return h


def run_reference(r, init, n, ks, images, labels, accumulation=None):
    h = reference_hyp(r, n, max(ks))
    if accumulation:
        h["ref.accumulation"] = accumulation
    stem_norm0 = any(k.startswith("features.norm0.") for k in init)
    model = models.build(r["model"], WIDTH, 1, 10, densenet_stem_norm0=stem_norm0)
    models.load_fullbatch_weights(model, init)
    notes = []
    if stem_norm0:
        notes.append("fullbatch's DenseNet stem has norm0/relu0 (the reference: conv0 alone); "
                     "compared with that stem")
    if r["fixed_rounds"]:
        images, labels = fb_data.fixed_augmented_set(images, labels, r["fixed_rounds"], SEED)
    order_fn = None
    if h.get("hyp.train_stochastic"):
        bs = h.get("data.batch_size", 128)
        order_fn = (lambda e: fb_rng.sgd_order(SEED, e, len(labels), bs,
                                               bool(h.get("hyp.sample_with_replacement"))))
    states = {}
    ref.run(model, images, labels, h, max(ks), gen=lambda s: fb_rng.noise_generator(SEED, s),
            order_fn=order_fn,
            on_step=lambda k, st: states.__setitem__(k, st) if k in ks else None)
    lrs = {s: ref.lr_at(s, h) for s in range(max(ks))}
    return model, states, lrs, notes


# ---- comparison --------------------------------------------------------------------------------

def rel_diffs(ours, theirs, start, names):
    """(global, max over tensors) of ||ours - theirs|| / ||ours - start||; 0/0 = 0, x/0 = inf."""
    num = den = 0.0
    worst = 0.0
    for n in names:
        a, b, s = ours[n].double(), theirs[n].double(), start[n].double()
        d, u = (a - b).norm().item() ** 2, (a - s).norm().item() ** 2
        num, den = num + d, den + u
        t = 0.0 if d == 0 else (float("inf") if u == 0 else (d / u) ** 0.5)
        worst = max(worst, t)
    glob = 0.0 if num == 0 else (float("inf") if den == 0 else (num / den) ** 0.5)
    return glob, worst


def compare(model, init, ours_state, ref_state):
    params = [n for n, _ in model.named_parameters()]
    buffers = [n for n, b in model.named_buffers() if b.is_floating_point()]
    ints = [n for n, b in model.named_buffers() if not b.is_floating_point()]
    ours = fio.model_state(ours_state)
    out = {}
    out["p_glob"], out["p_max"] = rel_diffs(ours, ref_state, init, params)
    out["bn_glob"], out["bn_max"] = rel_diffs(ours, ref_state, init, buffers) if buffers else (None, None)
    out["int_diff"] = sum(int(not torch.equal(ours[n], ref_state[n])) for n in ints)
    if any(k.startswith("ema.") for k in ours_state) or any(k.startswith("ema.") for k in ref_state):
        if not any(k.startswith("ema.") for k in ours_state):
            out["ema"] = float("inf")
        else:
            e_ours = fio.ema_state(ours_state, model)
            e_ref = {k[4:]: v for k, v in ref_state.items() if k.startswith("ema.")}
            out["ema"], _ = rel_diffs(e_ours, e_ref, init, params + buffers)
            out["int_diff"] += sum(int(not torch.equal(e_ours[n], e_ref[n])) for n in ints)
    return out


def g(v):
    if v is None:
        return "-"
    if v == float("inf"):
        return "inf"
    return "0" if v == 0 else f"{v:.1e}"


# ---- driver ------------------------------------------------------------------------------------

def fullbatch_job(r, fb, n, ks, work, init_cache):
    """The C++ side of a row: its init file and its run (checkpoints after every step). Runs in a
    worker thread, one row ahead of the Python side, so the two use the two cores."""
    folder = os.path.join(work, r["name"])
    shutil.rmtree(folder, ignore_errors=True)     # ours: a previous --keep run of this row
    os.makedirs(folder)
    log = os.path.join(folder, "log.txt")
    args = overrides(r, n, max(ks))
    t0 = time.time()
    key = (r["model"], WIDTH, SEED)
    if init_cache is not None and key in init_cache:
        init = init_cache[key]                     # --quick: one init file per model
    else:
        init = init_weights(fb, args, folder, log)
        if init_cache is not None:
            init_cache[key] = init
    run_dir = os.path.join(folder, "run")
    run_cmd([fb, "train", "--quiet", "--out", run_dir] + args, log)
    return init, run_dir, time.time() - t0


def reference_side(r, init, n, ks, run_dir, data_cache, floor):
    if n not in data_cache:
        data_cache[n] = fb_data.load_fashion_mnist(n)
    images, labels = data_cache[n]
    model, states, ref_lrs, notes = run_reference(r, init, n, ks, images, labels)
    floors = {}
    if floor:
        # The same reference with the block mean summed as fullbatch sums it (equal up to
        # rounding): how far a rounding-level difference grows in this row by step k.
        _, alt, _, _ = run_reference(r, init, n, ks, images, labels, accumulation="sum")
        params = [p for p, _ in model.named_parameters()]
        floors = {k: rel_diffs(states[k], alt[k], init, params)[0] for k in ks}
    fb_lrs = fullbatch_lrs(run_dir)
    lr_bad = [s for s in range(max(ks))
              if fb_lrs.get(s) is None or abs(fb_lrs[s] - ref_lrs[s]) > LR_TOL * max(1.0, abs(ref_lrs[s]))]
    results = []
    for k in ks:
        _, ours = fio.read_checkpoint(fio.checkpoint_path(run_dir, k))
        c = compare(model, init, ours, states[k])
        c["k"] = k
        c["lr"] = (fb_lrs.get(k - 1), ref_lrs[k - 1])
        c["floor"] = floors.get(k)
        results.append(c)
    if lr_bad:
        results[-1]["lr_bad"] = lr_bad
    return results, notes


def judge(r, results, notes):
    """Steps 1 and 2: every global value within the row's tolerance. Step 5 (rows without a
    finite difference only): within LATE_TOL, or 10x the row's noise floor where it was measured;
    finite-difference rows are chaotic by then (their floor reaches ~0.5) and are only reported.
    Every row: the lr of every step as the reference schedule gives it."""
    tol = r["fd_tol"] or TOL
    bad = []
    for c in results:
        if c["k"] <= 2:
            limit = tol
        elif r["fd_tol"]:
            continue
        else:
            limit = max(tol, LATE_TOL, 10 * (c["floor"] or 0.0))
        for key in ("p_glob", "bn_glob", "ema"):
            v = c.get(key)
            if v is not None and not v <= limit:
                bad.append(f"{key}@{c['k']}")
    lr_bad = results[-1].get("lr_bad") if results else None
    if lr_bad:
        bad.append("lr@step" + ",".join(str(s + 1) for s in lr_bad))
    if notes:
        bad.append("structure")
    return tol, bad


def print_row(r, n, results, notes, tol, bad, seconds, floor):
    for i, c in enumerate(results):
        lo, lr = c["lr"]
        lrs = f"{'-' if lo is None else f'{lo:.4g}'}/{lr:.4g}"
        verdict = ""
        if i == len(results) - 1:
            verdict = (f"{'PASS' if not bad else 'FAIL'} (tol {tol:g}"
                       f"{', finite differences' if r['fd_tol'] else ''}"
                       f"{'; over: ' + ' '.join(bad) if bad else ''}) {seconds:.0f}s")
        print(f"{r['name'] if i == 0 else '':18s} {n if i == 0 else '':>4} {c['k']:>2d} {lrs:>17s} "
              f"{g(c['p_glob']):>8s} {g(c['p_max']):>8s} {g(c['bn_glob']):>8s} "
              f"{g(c['bn_max']):>8s} {g(c.get('ema')):>8s} {c['int_diff']:>3d}"
              f"{' %8s' % g(c['floor']) if floor else ''}  {verdict}")
    for note in notes:
        print(f"{'':18s} note: {note}")
    sys.stdout.flush()


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description="fullbatch vs reference parity test")
    ap.add_argument("--fullbatch", required=True, help="path of the fullbatch binary")
    ap.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="the CI subset: <= 256 images, fewer steps for slow rows, one init per model")
    ap.add_argument("--floor", choices=("auto", "on", "off"), default="auto",
                    help="also run the reference with fullbatch's summation order (default: on "
                         "without --quick)")
    ap.add_argument("--keep", default="", help="keep the run directories in this folder")
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    a = ap.parse_args()
    if a.list:
        for r in ROWS:
            print(f"{r['name']:18s} {r['what']}")
        return 0
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    wanted = [x for x in a.rows.split(",") if x]
    unknown = [x for x in wanted if x not in {r["name"] for r in ROWS}]
    if unknown:
        print(f"unknown rows: {', '.join(unknown)} (see --list)")
        return 2
    rows = [r for r in ROWS if not wanted or r["name"] in wanted]
    floor = a.floor == "on" or (a.floor == "auto" and not a.quick)
    fb = os.path.abspath(a.fullbatch)
    if not os.access(fb, os.X_OK):
        print(f"{fb}: not an executable")
        return 2
    work = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="fb_parity_")
    os.makedirs(work, exist_ok=True)
    print(f"fullbatch {fb}; torch {torch.__version__}, 1 thread; "
          f"{'quick' if a.quick else 'full'} mode")
    print("rel = ||ours_k - ref_k|| / ||ours_k - init||: p_* parameters, bn_* float BN buffers, "
          "ema the EMA copy; int = integer buffers that differ" +
          ("; floor = ref vs ref summed as fullbatch sums" if floor else ""))
    print(f"{'row':18s} {'N':>4s} {'k':>2s} {'lr ours/ref':>17s} {'p_glob':>8s} {'p_max':>8s} "
          f"{'bn_glob':>8s} {'bn_max':>8s} {'ema':>8s} {'int':>3s}"
          f"{' %8s' % 'floor' if floor else ''}  verdict")
    plan = [(r, r["quick_n"] if a.quick else r["n"], r["quick_ks"] if a.quick else r["ks"])
            for r in rows]
    init_cache = {} if a.quick else None
    data_cache = {}
    passed = failed = 0
    t_all = time.time()
    # One worker: the C++ runs one after another, each ahead of the Python side of its row.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        jobs = [pool.submit(fullbatch_job, r, fb, n, ks, work, init_cache) for r, n, ks in plan]
        for (r, n, ks), job in zip(plan, jobs):
            t0 = time.time()
            try:
                init, run_dir, fb_s = job.result()
                results, notes = reference_side(r, init, n, ks, run_dir, data_cache, floor)
            except Exception as e:  # noqa: BLE001 - one broken row must not hide the others
                failed += 1
                print(f"{r['name']:18s} {n:>4} ERROR: {type(e).__name__}: {e}")
                sys.stdout.flush()
                continue
            tol, bad = judge(r, results, notes)
            print_row(r, n, results, notes, tol, bad, fb_s + time.time() - t0, floor)
            if bad:
                failed += 1
            else:
                passed += 1
    print(f"({time.time() - t_all:.0f} s; run directories in {work}"
          f"{'' if a.keep else ', removed'})")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
