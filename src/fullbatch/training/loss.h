#pragma once
// The training loss: cross-entropy, with the reference's label smoothing. The reference puts
// 1 - s on the target and s / (C - 1) on every other class; torch's built-in smoothing would put
// 1 - s + s / C and s / C, a different loss, so it is not used.
#include <torch/types.h>

#include <cstdint>

namespace fullbatch {

// Mean over the batch; plain cross-entropy when `smoothing` is 0.
torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double smoothing);

// The weight of each of B blocks in the full-batch objective: 1/B, every block equal whatever its
// size, as the reference's accumulation (a short last block weighs as much as a full one). The
// trainer's step and the analyses' objective both use this one definition, so the Hessian the
// analyses report is that of the objective the run follows.
inline double full_batch_block_weight(int64_t blocks) {
  return 1.0 / static_cast<double>(blocks);
}

}  // namespace fullbatch
