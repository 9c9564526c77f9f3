#pragma once
// The training loss: cross-entropy, with the reference's label smoothing. The reference puts
// 1 - s on the target and s / (C - 1) on every other class; torch's built-in smoothing would put
// 1 - s + s / C and s / C, a different loss, so it is not used.
#include <torch/types.h>

#include <cstdint>

namespace fullbatch {

// Mean over the batch; plain cross-entropy when `smoothing` is 0.
torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double smoothing);

}  // namespace fullbatch
