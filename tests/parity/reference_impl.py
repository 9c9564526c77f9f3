#!/usr/bin/env python3
"""An independent statement, in plain PyTorch, of what the reference implementation
(JonasGeiping/fullbatchtraining) does in one full-batch step and one SGD epoch.

Written from the notes in REFERENCE_NOTES.md (same folder), not copied from the reference. It is
an oracle for parity tests of the C++ trainer: no augmentation, blocks in file order (fixed),
hyper-parameters named like fullbatch's config keys. Each semantic cites the reference file it
comes from. Run `python3 tests/parity/reference_impl.py --selftest` for quick self-checks.
"""
import argparse
import copy
import math
import warnings

import torch
import torch.nn.functional as F

# config/data/CIFAR10.yaml
CIFAR10_MEAN = (0.4914672374725342, 0.4822617471218109, 0.4467701315879822)
CIFAR10_STD = (0.24703224003314972, 0.24348513782024384, 0.26158785820007324)

# config/hyp/_default_hyperparams.yaml + config/hyp/optim/gd.yaml + config/data/CIFAR10.yaml.
DEFAULTS = {
    "hyp.optim.lr": 0.1, "hyp.optim.momentum": 0.9, "hyp.optim.weight_decay": 5e-4,
    "hyp.optim.nesterov": True, "hyp.optim.dampening": 0.0, "hyp.warmup": 5, "hyp.steps": 120,
    "hyp.scheduler": "cosine-decay", "hyp.train_stochastic": False, "hyp.grad_clip": None,
    "hyp.grad_clip_norm": 2.0, "hyp.batch_clip": None, "hyp.grad_reg.block_strength": 0.0,
    "hyp.grad_reg.acc_strength": 0.0, "hyp.grad_reg.eps": 1e-2,
    "hyp.grad_reg.implementation": "forward-differences", "hyp.sub_batch": 128,
    "hyp.grad_noise.additive": None, "hyp.grad_noise.multiplicative": None,
    "hyp.label_smoothing": 0.0, "hyp.evaluate_ema": False, "hyp.eval_ema_momentum": 0.99,
    "hyp.test_time_flips": False, "data.batch_size": 128, "data.mean": CIFAR10_MEAN,
    "data.std": CIFAR10_STD,
    # Not a reference key: how block gradients are averaged. "mean" = training.py at a75f72e
    # (_stable_mean_accumulation); "legacy" = 8b654c5/143f7c2 (avg += (g - avg) / (N * chunks)),
    # an exponentially weighted sum of total weight 1 - (1 - 1/K)^K. "sum" = sum_k g_k / K, the
    # mean in fullbatch's arithmetic (equal to "mean" up to rounding; the parity test uses it to
    # measure how far a rounding-level difference grows, its noise floor).
    "ref.accumulation": "mean",
}


def cfg(hyp):
    h = dict(DEFAULTS, **(hyp or {}))
    for k in ("hyp.grad_clip", "hyp.batch_clip", "hyp.grad_noise.additive",
              "hyp.grad_noise.multiplicative"):
        h[k] = None if h[k] == 0 else h[k]         # fullbatch's 0 = off is the reference's None
    if h["hyp.grad_reg.implementation"] == "double-backprop":
        h["hyp.grad_reg.implementation"] = "autograd"   # the reference's name for it
    return h


# ---- learning rate (training/optimizers.py + the ildoonet GradualWarmupScheduler) -------------
def _after_warmup(k, b, T, kind):
    """The inner scheduler's lr after k of its own steps (torch's schedulers in closed form)."""
    if kind in (None, "", " ", "constant"):
        return b                                   # MultiStepLR(milestones=[], gamma=1)
    if kind == "cosine-decay":
        return 0.5 * b * (1 + math.cos(math.pi * k / T))      # CosineAnnealingLR(steps, 0)
    if kind == "cosine-decay-floored":
        lo = b / 25
        return lo + 0.5 * (b - lo) * (1 + math.cos(math.pi * k / T))
    if kind.startswith("cosine-"):                 # reference has cosine-4000 only; N generalizes
        return 0.5 * b * (1 + math.cos(math.pi * k / float(kind[len("cosine-"):])))
    if kind == "linear":                           # a step decay: MultiStepLR(gamma=0.1)
        return b * 0.1 ** sum(m <= k for m in (T // 2.667, T // 1.6, T // 1.142))
    if kind == "exponential":
        return b * 0.99 ** k
    raise ValueError(f"unknown scheduler {kind}")


def lr_at(step, hyp):
    """lr of 0-based step (full batch) or epoch (SGD). The warm-up wrapper gives b*s/W up to
    s = W, then returns the inner scheduler's last lr (still b) at s = W+1: the peak is held two
    steps and the inner clock is k = s - W - 1."""
    h = cfg(hyp)
    b, W, T, kind = h["hyp.optim.lr"], h["hyp.warmup"], h["hyp.steps"], h["hyp.scheduler"]
    if W <= 0:
        return _after_warmup(step, b, T, kind)
    if step <= W:
        return b * step / W
    return _after_warmup(step - W - 1, b, T, kind)


# ---- loss (models/modules.py LabelSmoothCrossEntropyLoss, used even for smoothing 0.0) ---------
def smoothed_cross_entropy(logits, labels, s):
    logp = F.log_softmax(logits, dim=-1)
    w = torch.full_like(logits, s / (logits.shape[-1] - 1.0))   # s/(C-1) on every class ...
    w.scatter_(-1, labels.unsqueeze(-1), 1.0 - s)                 # ... 1-s on the target
    return (-w * logp).sum(dim=-1).mean()


def _grads(model, x, y, h, create_graph=False):
    out = model(x)                                 # training mode: BN running stats move
    loss = smoothed_cross_entropy(out, y, h["hyp.label_smoothing"])
    g = torch.autograd.grad(loss, list(model.parameters()), create_graph=create_graph)
    return list(g), loss.detach(), (out.argmax(-1) == y).sum().item()


# ---- one block/chunk gradient with the regularizer (models/modules.py GradRegularizer) ---------
def block_gradient(model, x, y, lr, hyp, pre_grads=None):
    """Gradient of one chunk, plus (lr/4) H (alpha g + beta G) for the gradient penalty.
    Returns (grads, loss, correct). No lr == 0 shortcut: the reference always runs the perturbed
    pass(es), which update BatchNorm statistics even at the first warm-up step."""
    h = cfg(hyp)
    alpha, beta = h["hyp.grad_reg.block_strength"], h["hyp.grad_reg.acc_strength"]
    eps, impl = h["hyp.grad_reg.eps"], h["hyp.grad_reg.implementation"]
    params = list(model.parameters())
    on = alpha != 0 or beta != 0
    graph = on and impl == "autograd"
    grads, loss, correct = _grads(model, x, y, h, create_graph=graph)
    if not on:
        return grads, loss, correct
    c = lr / 4                                     # correction_factor = lr / 4
    if impl == "autograd":                         # exact H g via double backprop
        hv = torch.autograd.grad(grads, params, grad_outputs=[g.detach() for g in grads],
                                 retain_graph=pre_grads is not None)
        out = [g.detach().add(v, alpha=c * alpha) for g, v in zip(grads, hv)]
        if pre_grads is not None:
            hv = torch.autograd.grad(grads, params, grad_outputs=pre_grads)
            out = [g.add(v, alpha=c * beta) for g, v in zip(out, hv)]
        return out, loss, correct
    # (The reference's "autograd-pen" differentiates alpha*||g||^2: twice this. Not modelled.)
    with torch.no_grad():
        v = [g * alpha for g in grads]            # the direction of the Hessian-vector product
        if pre_grads is not None:
            v = [a.add(G, alpha=beta) for a, G in zip(v, pre_grads)]
        # eps_n = eps / ||v||: per-tensor sums of squares, stacked, summed, sqrt, in grad dtype.
        eps_n = eps / torch.stack([a.pow(2).sum() for a in v]).sum().sqrt()
        saved = [p.detach().clone() for p in params]
    if impl == "forward-differences":
        with torch.no_grad():
            for p, a in zip(params, v):
                p.add_(a, alpha=eps_n.item())      # one fused add: p + eps_n * v
        gp, _, _ = _grads(model, x, y, h)
        with torch.no_grad():
            vhp = [(a - g).div_(eps_n.item()) for a, g in zip(gp, grads)]
    elif impl == "central-differences":
        with torch.no_grad():
            for p, a in zip(params, v):
                p.add_(a, alpha=(0.5 * eps_n).item())   # theta + eps_n v / 2
        g_plus, _, _ = _grads(model, x, y, h)
        with torch.no_grad():
            for p, a in zip(params, v):
                p.sub_(a, alpha=eps_n.item())           # from the + point: theta - eps_n v / 2
        g_minus, _, _ = _grads(model, x, y, h)
        with torch.no_grad():
            vhp = [(a - m).div_(eps_n.item()) for a, m in zip(g_plus, g_minus)]  # / eps_n
    else:
        raise ValueError(f"unknown implementation {impl}")
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)                             # restored by copy, not by subtraction
        return [g.add(a, alpha=c) for g, a in zip(grads, vhp)], loss, correct


# ---- helpers -----------------------------------------------------------------------------------
def normalize(images_u8, h):
    """ToTensor (x/255) then Normalize((x - mean) / std), float32 (data/data_preparation.py)."""
    x = images_u8.to(torch.float32).div(255)
    m = torch.tensor(h["data.mean"], dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(h["data.std"], dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub(m).div(s)


def clip_(grads, clip, norm_type):
    """training/utils.py _clip_gradient_list and the full clip in training.py: scale by
    clip / (norm + 1e-6), only when norm > clip. Returns 1 if clipped."""
    if norm_type == float("inf"):
        norm = max(g.abs().max() for g in grads)
    else:
        norm = torch.norm(torch.stack([torch.norm(g, norm_type) for g in grads]), norm_type)
    if norm > clip:
        for g in grads:
            g.mul_(clip / (norm + 1e-6))
        return 1
    return 0


def _randn(t, gen):                                # the reference: randn_like, global RNG
    return torch.randn(t.shape, generator=gen, dtype=t.dtype, device=t.device)


def update_ema(model, ema_model, m):
    """training/utils.py _update_ema: parameters AND buffers, t = m t + (1-m) s (integer buffers
    are computed in float and truncated back by copy_)."""
    with torch.no_grad():
        for s, t in zip(model.parameters(), ema_model.parameters()):
            t.copy_(m * t.data + (1 - m) * s.data)
        for s, t in zip(model.buffers(), ema_model.buffers()):
            t.copy_(m * t.data + (1 - m) * s.data)


def make_optimizer(model, hyp):
    h = cfg(hyp)                                   # torch.optim.SGD as optimizers.py builds it
    return torch.optim.SGD(model.parameters(), lr=h["hyp.optim.lr"],
                           momentum=h["hyp.optim.momentum"], dampening=h["hyp.optim.dampening"],
                           weight_decay=h["hyp.optim.weight_decay"],
                           nesterov=h["hyp.optim.nesterov"])


def _blocks(n, bs):
    return [(k * bs, (k + 1) * bs) for k in range(n // bs)]     # drop_last=True


# ---- the full gradient of one step (training.py _accumulate_full_gradient) ---------------------
def full_gradient(model, images_u8, labels, hyp, lr):
    """Averaged (regularized) chunk gradients over all blocks, before clipping and noise."""
    h = cfg(hyp)
    params = list(model.parameters())
    x_all, y_all = normalize(images_u8, h).to(params[0].dtype), labels.long()
    blocks = _blocks(len(y_all), h["data.batch_size"])
    legacy = h["ref.accumulation"] == "legacy"
    plain_sum = h["ref.accumulation"] == "sum"
    pre = None
    if h["hyp.grad_reg.acc_strength"] != 0:
        # Pre-pass over whole blocks, plain gradients (the reference draws a NEW augmentation
        # here; without augmentation the data are the same). BN statistics move here too.
        pre = [torch.zeros_like(p) for p in params]
        for k, (a, b) in enumerate(blocks):
            g, _, _ = _grads(model, x_all[a:b], y_all[a:b], h)
            with torch.no_grad():
                if h["hyp.batch_clip"] is not None:
                    clip_(g, h["hyp.batch_clip"], h["hyp.grad_clip_norm"])
                for m, gi in zip(pre, g):
                    if plain_sum:
                        m.add_(gi, alpha=1 / len(blocks))
                    else:
                        m.add_(gi - m, alpha=1 / (len(blocks) if legacy else k + 1))
    avg = [torch.zeros_like(p) for p in params]
    stats = {"loss": 0.0, "correct": 0, "clipped": 0}
    sub = h["hyp.sub_batch"] or h["data.batch_size"]       # fullbatch: 0 = whole block
    for k, (a, b) in enumerate(blocks):
        chunks = max((b - a) // sub, 1)            # torch.chunk into n // sub pieces
        xs, ys = torch.chunk(x_all[a:b], chunks), torch.chunk(y_all[a:b], chunks)
        for i, (xc, yc) in enumerate(zip(xs, ys)):
            g, loss, correct = block_gradient(model, xc, yc, lr, h, pre)
            with torch.no_grad():
                if h["hyp.batch_clip"] is not None:        # per chunk, after the regularizer
                    stats["clipped"] += clip_(g, h["hyp.batch_clip"], h["hyp.grad_clip_norm"])
                counter = len(blocks) * chunks if legacy else k * chunks + i + 1
                for m, gi in zip(avg, g):
                    if plain_sum:
                        m.add_(gi, alpha=1 / (len(blocks) * chunks))
                    else:
                        m.add_(gi - m, alpha=1 / counter)
            stats["loss"] += loss.item() / chunks
            stats["correct"] += correct
    stats["loss"] /= len(blocks)
    return avg, stats


def full_batch_step(model, optimizer, images_u8, labels, hyp, step, ema_model=None, gen=None):
    """One full-batch step: accumulate, clip (+1e-6), additive then multiplicative noise,
    torch SGD (weight decay added there, never clipped), EMA once per step."""
    h = cfg(hyp)
    lr = lr_at(step, h)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    avg, stats = full_gradient(model, images_u8, labels, h, lr)
    with torch.no_grad():
        if h["hyp.grad_clip"] is not None:
            clip_(avg, h["hyp.grad_clip"], h["hyp.grad_clip_norm"])
        if h["hyp.grad_noise.additive"] is not None:
            for g in avg:
                g.add_(h["hyp.grad_noise.additive"] * _randn(g, gen))
        if h["hyp.grad_noise.multiplicative"] is not None:
            for g in avg:
                g.mul_(1 + h["hyp.grad_noise.multiplicative"] * _randn(g, gen))
    for p, g in zip(model.parameters(), avg):
        p.grad = g
    optimizer.step()
    if ema_model is not None:
        update_ema(model, ema_model, h["hyp.eval_ema_momentum"])
    stats["lr"] = lr
    return stats


def sgd_epoch(model, optimizer, images_u8, labels, hyp, epoch, ema_model=None, order=None):
    """One SGD epoch (training.py, train_stochastic branch): per batch the whole batch's gradient
    (no sub_batch chunking), the regularizer without pre_grads, clip_grad_norm_ (l2) if
    grad_clip, SGD step. No batch_clip, no noise. lr and EMA change once per epoch."""
    h = cfg(hyp)
    lr = lr_at(epoch, h)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    params = list(model.parameters())
    x_all, y_all = normalize(images_u8, h).to(params[0].dtype), labels.long()
    order = torch.arange(len(y_all)) if order is None else order
    stats = {"loss": 0.0, "correct": 0, "lr": lr}
    blocks = _blocks(len(order), h["data.batch_size"])
    for a, b in blocks:
        idx = order[a:b]
        g, loss, correct = block_gradient(model, x_all[idx], y_all[idx], lr, h, None)
        for p, gi in zip(params, g):
            p.grad = gi
        if h["hyp.grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(params, h["hyp.grad_clip"], norm_type=2.0)
        optimizer.step()
        optimizer.zero_grad()
        stats["loss"] += loss.item() / len(blocks)
        stats["correct"] += correct
    if ema_model is not None:
        update_ema(model, ema_model, h["hyp.eval_ema_momentum"])
    return stats


def evaluate(model, images_u8, labels, hyp):
    """training.py evaluate(): eval mode, plain CE; test-time flips SUM the two softmaxes and the
    loss is CE of that sum treated as logits."""
    h = cfg(hyp)
    model.eval()
    with torch.no_grad():
        x, y = normalize(images_u8, h), labels.long()
        out = model(x)
        if h["hyp.test_time_flips"]:
            out = out.softmax(1) + model(torch.flip(x, [3])).softmax(1)
        loss, acc = F.cross_entropy(out, y).item(), (out.argmax(-1) == y).float().mean().item()
    model.train()
    return loss, acc


def run(model, images_u8, labels, hyp, k, start_step=0, gen=None, order_fn=None, on_step=None):
    """k steps (or epochs) from a fresh optimizer; returns {name: tensor} of parameters and
    buffers (and of the EMA model, prefixed 'ema.', when evaluate_ema).

    gen: a torch.Generator for the gradient noise, or a callable step -> Generator (the parity
    test passes fullbatch's keyed generator of each step, so the draws are the same numbers).
    order_fn: callable epoch -> LongTensor, the sample order of an SGD epoch (default file order).
    on_step: callable (steps_done, state) after every step, state as returned."""
    h = cfg(hyp)
    opt = make_optimizer(model, h)
    ema = copy.deepcopy(model) if h["hyp.evaluate_ema"] else None   # EMA starts at the init

    def state():
        out = {n: t.detach().clone() for n, t in model.state_dict().items()}
        if ema is not None:
            out.update({"ema." + n: t.detach().clone() for n, t in ema.state_dict().items()})
        return out

    for s in range(start_step, start_step + k):
        if h["hyp.train_stochastic"]:
            sgd_epoch(model, opt, images_u8, labels, h, s, ema,
                      order_fn(s) if order_fn is not None else None)
        else:
            full_batch_step(model, opt, images_u8, labels, h, s, ema,
                            gen(s) if callable(gen) else gen)
        if on_step is not None:
            on_step(s - start_step + 1, state())
    return state()


# ---- self-test ---------------------------------------------------------------------------------
def _torch_schedule(kind, b, W, T, n):
    """The schedule driven by torch's own schedulers, with the warm-up wrapper's mechanism
    re-stated: lr b*s/W up to W, the inner scheduler's last lr at W+1, then inner.step()."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=b)
    S = torch.optim.lr_scheduler
    inner = {"cosine-decay": lambda: S.CosineAnnealingLR(opt, T, eta_min=0.0),
             "cosine-4000": lambda: S.CosineAnnealingLR(opt, 4000, eta_min=0.0),
             "linear": lambda: S.MultiStepLR(opt, [T // 2.667, T // 1.6, T // 1.142], 0.1),
             "": lambda: S.MultiStepLR(opt, [], 1)}[kind]()
    out = []
    for s in range(n):
        if W > 0 and s <= W:
            opt.param_groups[0]["lr"] = b * s / W
        elif W > 0 and s == W + 1:
            opt.param_groups[0]["lr"] = inner.get_last_lr()[0]
        elif s > 0:
            inner.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def _flat(ts):
    return torch.cat([t.flatten() for t in ts])


def selftest():
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    ok = True
    tiny = {"hyp.optim.lr": 1.0, "hyp.warmup": 3, "hyp.steps": 10}
    print("lr, warmup 3, steps 10, cosine-decay:", " ".join(f"{lr_at(s, tiny):.4f}" for s in range(10)))
    for kind, W, T, n in [("cosine-decay", 3, 10, 10), ("cosine-decay", 0, 10, 10),
                          ("cosine-4000", 400, 3000, 3000), ("linear", 5, 300, 300), ("", 2, 5, 5)]:
        h = {"hyp.optim.lr": 0.4, "hyp.warmup": W, "hyp.steps": T, "hyp.scheduler": kind}
        err = max(abs(a - lr_at(s, h)) for s, a in enumerate(_torch_schedule(kind, 0.4, W, T, n)))
        print(f"  closed form vs torch schedulers ({kind or 'constant'}, W={W}): max diff {err:.1e}")
        ok &= err < 1e-12
    fb2 = {"hyp.optim.lr": 0.4, "hyp.warmup": 400, "hyp.steps": 3000, "hyp.scheduler": "cosine-4000"}
    for name, h, W, T in [("base_sgd", {"hyp.steps": 300}, 5, 300), ("fb2", fb2, 400, 3000)]:
        print(f"  {name}: " + " ".join(f"lr({s})={lr_at(s, h):.7g}" for s in (W, W + 1, W + 2, T - 1)))

    # The regularizer on a tiny tanh MLP in float64: finite differences vs exact double backprop.
    torch.set_default_dtype(torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    G = [torch.randn_like(p) * 0.1 for p in net.parameters()]
    base = {"hyp.grad_reg.block_strength": 0.5, "hyp.grad_reg.acc_strength": 0.3}
    g0 = _flat(block_gradient(net, x, y, 0.4, {})[0])
    for pre in (None, G):
        exact = _flat(block_gradient(net, x, y, 0.4, dict(
            base, **{"hyp.grad_reg.implementation": "double-backprop"}), pre)[0]) - g0
        for impl in ("central-differences", "forward-differences"):
            for eps in (1e-4, 1e-2):
                h = dict(base, **{"hyp.grad_reg.implementation": impl, "hyp.grad_reg.eps": eps})
                r = _flat(block_gradient(net, x, y, 0.4, h, pre)[0]) - g0
                rel = ((r - exact).norm() / exact.norm()).item()
                print(f"  reg. term {impl:19s} eps {eps:g} {'with G' if pre else 'no G  '}: "
                      f"rel. err vs double backprop {rel:.2e}")
                ok &= rel < 1e-6 or impl != "central-differences" or eps != 1e-4

    logits, lab = torch.randn(4, 10), torch.randint(0, 10, (4,))
    lp = F.log_softmax(logits, -1)
    lpy = lp.gather(1, lab[:, None]).squeeze(1)
    manual = (-0.9 * lpy - 0.1 / 9 * (lp.sum(1) - lpy)).mean()
    ours = smoothed_cross_entropy(logits, lab, 0.1)
    print(f"  label smoothing 0.1: ours {ours:.6f} manual {manual:.6f} "
          f"torch's label_smoothing {F.cross_entropy(logits, lab, label_smoothing=0.1):.6f}")
    ok &= abs(ours - manual).item() < 1e-12

    # A tiny BN conv net: step 0 (lr 0) changes no weight, but the regularizer's perturbed passes
    # still move the BN statistics; accumulation is the chunk mean ("legacy": ~0.63 of it).
    def conv_net():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                   torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                   torch.nn.Flatten(), torch.nn.Linear(4, 3))
    imgs, labs = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8), torch.randint(0, 3, (64,))
    hyp = {"hyp.warmup": 1, "hyp.steps": 4, "hyp.optim.lr": 0.5, "data.batch_size": 16,
           "hyp.sub_batch": 8, "hyp.grad_clip": 0.25, "hyp.grad_reg.block_strength": 0.5}
    net0 = conv_net()
    w0 = _flat(net0.parameters()).detach().clone()
    s_reg = run(net0, imgs, labs, hyp, 1)
    same = torch.equal(w0, _flat(net0.parameters()))
    s_plain = run(conv_net(), imgs, labs, dict(hyp, **{"hyp.grad_reg.block_strength": 0.0}), 1)
    dbn = (s_reg["1.running_mean"] - s_plain["1.running_mean"]).abs().max().item()
    print(f"  step 0 (lr 0): weights unchanged {same}; BN running_mean differs from the "
          f"unregularized run by {dbn:.2e}")
    ok &= same and dbn > 0
    small = {"data.batch_size": 16, "hyp.sub_batch": 8}
    xs = normalize(imgs, cfg({})).double()
    mean = _flat(torch.stack(c).mean(0) for c in zip(*[
        _grads(conv_net(), xs[a:a + 8], labs[a:a + 8], cfg({}))[0] for a in range(0, 64, 8)]))
    avg = _flat(full_gradient(conv_net(), imgs, labs, small, 0.0)[0])
    legacy = _flat(full_gradient(conv_net(), imgs, labs, dict(small, **{"ref.accumulation": "legacy"}), 0.0)[0])
    err = (avg - mean).abs().max().item()
    print(f"  accumulation 'mean' vs mean of the 8 chunk gradients: {err:.1e}; |legacy|/|mean| = "
          f"{(legacy.norm() / mean.norm()).item():.4f} (K=390 chunks: {1 - (1 - 1 / 390) ** 390:.4f})")
    ok &= err < 1e-12
    run(conv_net(), imgs, labs, dict(hyp, **{"hyp.train_stochastic": True, "hyp.evaluate_ema": True}), 2)
    print("  2 SGD epochs with EMA ran")
    torch.set_default_dtype(torch.float32)
    print("selftest", "PASSED" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--selftest", action="store_true", help="run the quick self-checks")
    if ap.parse_args().selftest:
        raise SystemExit(0 if selftest() else 1)
    ap.print_help()
