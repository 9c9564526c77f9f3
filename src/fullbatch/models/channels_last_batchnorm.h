#pragma once
// Training-mode BatchNorm for channels-last float32 tensors on the CPU, its per-channel sums
// accurate to float rounding. libtorch's own channels-last CPU kernel sums a block's statistics
// sequentially in float per thread; after a ReLU, where a channel's mean is many times its spread,
// that moved a ResNet-18 block gradient 4x (bench/precision_check.py) to 1,000x
// (tests/channels_last_batchnorm_test.cpp) further from float64 than the NCHW kernel with libtorch
// 1.13 (docs/performance.md), which would make channels-last the less exact layout. Here every
// sum (mean and variance forward; sum(gy) and sum(gy * (x - mean)) backward) goes over fixed chunks
// of 64 pixels in float, on values shifted near zero, and the chunks are added in double, in order:
// the result does not depend on the thread count. The normalization itself runs through libtorch's
// channels-last kernel (native_batch_norm in inference form, given these statistics).
#include <torch/types.h>

namespace fullbatch {

// Whether `x` is what channels_last_batch_norm is for: a 4-d float32 CPU tensor laid out
// channels-last (and not also NCHW-contiguous, as a 1-channel or 1x1 tensor is).
bool wants_exact_channels_last_moments(const torch::Tensor& x);

// Per-channel mean and biased variance of x [N, C, H, W] (channels-last, float32), summed in
// double over fixed chunks of rows and the chunks added in order, so the result depends neither on
// the thread count nor on the scheduling. Returns {mean, var} as float32 [C].
std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x);

// Batch normalization of x with its own batch statistics, as torch::nn::functional::batch_norm
// in training mode: y = (x - mean) / sqrt(var + eps) * weight + bias (weight and bias may be
// undefined), differentiable in x, weight and bias, twice as well (a double backward through
// create_graph recomputes the statistics with differentiable tensor operations). When running_mean
// and running_var are defined they are updated as libtorch does: r = (1 - momentum) r + momentum s,
// with the unbiased variance.
torch::Tensor channels_last_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                                       const torch::Tensor& bias, const torch::Tensor& running_mean,
                                       const torch::Tensor& running_var, double momentum,
                                       double eps);

}  // namespace fullbatch
