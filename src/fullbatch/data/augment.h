#pragma once
// The training augmentation (random crop of a zero-padded image, horizontal flip), drawn as
// small per-image parameters and applied to a whole block at once.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace fullbatch {

// Per-image parameters of "crop-flip": a random crop of the image's own size out of the image
// zero-padded by `padding` on every side (offsets dx, dy in [0, 2*padding]), then a horizontal
// flip. Stored as small integer tensors so a fixed N x augmented training set costs 3 bytes an
// image rather than a copy of the image.
struct CropFlipParams {
  torch::Tensor dx;    // int64 [n], in [0, 2*padding]
  torch::Tensor dy;    // int64 [n], in [0, 2*padding]
  torch::Tensor flip;  // bool  [n]
};

// Draws n images' parameters from `gen` (CPU generator), flip with probability 0.5.
CropFlipParams draw_crop_flip(int64_t n, int64_t padding, at::Generator& gen);

// Applies the parameters to a whole block at once ([n, C, H, W], any dtype, any device; the
// params are moved to the block's device). No per-image loop: two gathers over a padded block.
torch::Tensor apply_crop_flip(const torch::Tensor& images, const CropFlipParams& params,
                              int64_t padding);

// Reference implementation, one image at a time with plain slicing; used by tests as an oracle.
torch::Tensor apply_crop_flip_reference(const torch::Tensor& images, const CropFlipParams& params,
                                        int64_t padding);

}  // namespace fullbatch
