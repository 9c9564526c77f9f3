"""fullbatch's keyed random numbers (src/fullbatch/common/rng.{h,cpp}) in Python.

Every draw in fullbatch comes from a fresh CPU generator seeded with
derive_seed(seed, stream, keys): SplitMix64's finalizer chained over the stream and the keys.
LibTorch's CPUGeneratorImpl is the mt19937 that `torch.Generator().manual_seed(s)` builds in
Python, and the Debian python3-torch shares the very libtorch_cpu the C++ links, so the same
calls (randint, bernoulli, randperm, normal) give the same numbers bit for bit.
"""
import torch

MASK = (1 << 64) - 1

# enum class Stream (common/rng.h)
INIT, AUGMENT, ORDER, NOISE, FIXED_AUGMENT = 1, 2, 3, 4, 5


def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def derive_seed(seed, stream, keys=()):
    h = mix64((seed & MASK) ^ mix64(stream))
    for k in keys:
        h = mix64(h ^ mix64((k + 0x632BE59BD9B4E019) & MASK))
    return h


def keyed_generator(seed, stream, keys=()):
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, stream, [k & MASK for k in keys]))
    return g


def noise_generator(seed, step):
    """Gradient noise of full-batch step `step` (0-based): Stream::kNoise keyed by the step."""
    return keyed_generator(seed, NOISE, (step,))


def sgd_order(seed, epoch, num_samples, batch_size, with_replacement):
    """The sample order of SGD epoch `epoch` (data/data_order.cpp block_order): a permutation
    keyed (epoch, 0), or blocks*batch draws with replacement keyed (epoch, 1)."""
    blocks = num_samples // batch_size
    if with_replacement:
        g = keyed_generator(seed, ORDER, (epoch, 1))
        return torch.randint(num_samples, (blocks * batch_size,), generator=g, dtype=torch.int64)
    g = keyed_generator(seed, ORDER, (epoch, 0))
    return torch.randperm(num_samples, generator=g, dtype=torch.int64)


def fixed_round_order(seed, rounds, n):
    """The full-batch order of an N x fixed augmented set (data/data_order.cpp, permute_once):
    each round shuffled on its own, as the reference writes its database, keyed
    (~0, 3, round), rounds concatenated."""
    parts = [torch.randperm(n, generator=keyed_generator(seed, ORDER, (MASK, 3, r)),
                            dtype=torch.int64) + r * n for r in range(rounds)]
    return torch.cat(parts)


def replay_init(model, seed):
    """fullbatch's initialization (models/factory.cpp initialize_weights as of this writing),
    replayed in Python. NOT used by the parity test (weights always come from fullbatch's init
    file); it only checks that the generators above reproduce a C++ draw bit for bit."""
    g = keyed_generator(derive_seed(seed, INIT), INIT)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                w = m.weight
                fan_out = w.shape[0] * w.shape[2] * w.shape[3]
                w.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
            elif isinstance(m, torch.nn.Linear):
                b = 1.0 / m.weight.shape[1] ** 0.5
                m.weight.uniform_(-b, b, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-b, b, generator=g)
    return model
