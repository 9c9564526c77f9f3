#pragma once
// The training augmentations, each drawn as small per-image parameters and applied to a whole
// block at once: "crop-flip" (random crop of a zero-padded image, horizontal flip; CIFAR, MNIST,
// TinyImageNet) and "random-resized-crop" (torchvision's RandomResizedCrop + RandomHorizontalFlip;
// ImageNet-style image folders).
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

// Per-image parameters of "random-resized-crop": the crop box (rows top .. top + height - 1,
// columns left .. left + width - 1 of the stored image), which is resized to the output size,
// then flipped horizontally where `flip` is set.
struct ResizedCropParams {
  torch::Tensor top;     // int64 [n]
  torch::Tensor left;    // int64 [n]
  torch::Tensor height;  // int64 [n], in [1, image height]
  torch::Tensor width;   // int64 [n], in [1, image width]
  torch::Tensor flip;    // bool  [n]

  int64_t size() const { return top.defined() ? top.size(0) : 0; }
  // Images [begin, end) of the parameters (a rank's slice of a global block).
  ResizedCropParams slice(int64_t begin, int64_t end) const;
};

// Draws n images' crop boxes for images of height x width as torchvision's
// RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)).get_params does: up to 10 attempts, each
// an area fraction uniform in [0.08, 1] and an aspect ratio (width / height) log-uniform in
// [3/4, 4/3], w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio)) (Python's round); the
// first that fits is placed uniformly; if none fits, the central crop of the whole image clamped
// to the ratio range. Then a flip with probability 0.5 (RandomHorizontalFlip). All uniforms are
// drawn up front in a fixed order (area fractions [n, 10], log-ratios [n, 10], positions [n, 2],
// flips [n]), so a keyed generator always yields the same parameters for the same n.
ResizedCropParams draw_resized_crop(int64_t n, int64_t height, int64_t width, at::Generator& gen);

// Crops each image of a block ([n, C, H, W], uint8 or floating point, any device; the params are
// moved to the block's device) to its box, resizes the box to out_pixels x out_pixels and flips
// it where asked: one grid_sample over the whole block. Bilinear with align_corners=false, the
// sample positions clamped to the box, so it equals cropping and then interpolate(bilinear,
// align_corners=false) per image. This is not antialiased, unlike PIL's resize in the reference;
// from a box at most a little larger than the output (a stored 256 x 256 image cropped to 224)
// the difference is small. uint8 in, uint8 out (rounded, as PIL stores its result); floating
// point in, the same type out.
torch::Tensor apply_resized_crop(const torch::Tensor& images, const ResizedCropParams& params,
                                 int64_t out_pixels);

// Reference implementation, one image at a time: slice the box, interpolate, flip. Used by tests
// as an oracle (equal to apply_resized_crop up to float rounding of the sample positions).
torch::Tensor apply_resized_crop_reference(const torch::Tensor& images,
                                           const ResizedCropParams& params, int64_t out_pixels);

}  // namespace fullbatch
