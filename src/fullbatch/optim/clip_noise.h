#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <vector>

namespace fullbatch {

using TensorList = std::vector<torch::Tensor>;

// The gradients of `params` (each .grad(), zeros where undefined).
TensorList gradients_of(const TensorList& params);

// The global norm over all tensors: l2 (norm_type 2) or max-abs (norm_type inf). A 0-dim tensor
// on the tensors' device, so callers decide when to synchronize.
torch::Tensor global_norm(const TensorList& tensors, double norm_type = 2.0);

// Scales `tensors` in place to norm `max_norm` when their norm exceeds it. Returns the norm
// before clipping (0-dim tensor). No host synchronization.
torch::Tensor clip_to_norm(TensorList& tensors, double max_norm, double norm_type = 2.0);

// Gaussian gradient noise (PAPER: additive g += s N(0,1), multiplicative g *= 1 + s N(0,1)),
// drawn from `gen` on the CPU so the draw does not depend on the device.
void add_gradient_noise(TensorList& grads, double additive, double multiplicative,
                        at::Generator& gen);

}  // namespace fullbatch
