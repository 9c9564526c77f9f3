#pragma once
// What is done to a gradient after it is summed and before the optimizer sees it: clipping to a
// norm (the full gradient, or each block's gradient) and Gaussian gradient noise. The paper's
// clipping replaces part of SGD's implicit regularization; the noise rows of its Table 1 test
// whether noise alone restores it.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "fullbatch/common/tensor_list.h"

namespace fullbatch {

struct ClipSettings {
  double max_norm = 0.0;        // hyp.grad_clip: the full gradient; 0 = off
  double norm_type = 2.0;       // hyp.grad_clip_norm: 2 or inf (both clipping forms)
  double block_max_norm = 0.0;  // hyp.batch_clip: each block's gradient; 0 = off
};

struct NoiseSettings {
  double additive = 0.0;        // hyp.grad_noise.additive: g += s N(0, 1)
  double multiplicative = 0.0;  // hyp.grad_noise.multiplicative: g *= 1 + s N(0, 1)
  bool any() const { return additive > 0 || multiplicative > 0; }
};

// Scales `tensors` in place by min(1, max_norm / (norm + 1e-6)), the reference's clipping.
// Returns the norm before clipping (0-dim tensor). No host synchronization.
torch::Tensor clip_to_norm(TensorList& tensors, double max_norm, double norm_type = 2.0);

// Gaussian gradient noise, additive on every tensor first, then multiplicative (the reference's
// order), drawn from `gen` on the CPU so the draw does not depend on the device.
void add_gradient_noise(TensorList& grads, const NoiseSettings& noise, at::Generator& gen);

}  // namespace fullbatch
