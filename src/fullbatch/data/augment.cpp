#include "fullbatch/data/augment.h"

#include <stdexcept>
#include <string>

namespace fullbatch {
namespace {

void check_args(const torch::Tensor& images, const CropFlipParams& p, int64_t padding) {
  if (images.dim() != 4) throw std::invalid_argument("crop-flip: images must be [n, C, H, W]");
  if (padding < 0) throw std::invalid_argument("crop-flip: padding must be >= 0");
  const int64_t n = images.size(0);
  if (p.dx.numel() != n || p.dy.numel() != n || p.flip.numel() != n) {
    throw std::invalid_argument("crop-flip: " + std::to_string(n) +
                                " images but params for a different count");
  }
}

torch::Tensor pad(const torch::Tensor& images, int64_t padding) {
  if (padding == 0) return images;
  return torch::constant_pad_nd(images, {padding, padding, padding, padding}, 0);
}

}  // namespace

CropFlipParams draw_crop_flip(int64_t n, int64_t padding, at::Generator& gen) {
  // Fixed draw order (dx, dy, flip) so a keyed generator always yields the same parameters.
  CropFlipParams p;
  p.dx = torch::randint(0, 2 * padding + 1, {n}, gen, torch::kLong);
  p.dy = torch::randint(0, 2 * padding + 1, {n}, gen, torch::kLong);
  p.flip = torch::bernoulli(torch::full({n}, 0.5, torch::kFloat), gen).to(torch::kBool);
  return p;
}

torch::Tensor apply_crop_flip(const torch::Tensor& images, const CropFlipParams& params,
                              int64_t padding) {
  check_args(images, params, padding);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t pw = w + 2 * padding, ph = h + 2 * padding;
  const auto dev = images.device();
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  // non_blocking: a host-to-GPU copy that is not asked to be asynchronous ends with a stream
  // synchronization, which would stall the host once per block until the GPU drained its queue.
  auto dx = params.dx.to(dev, torch::kLong, /*non_blocking=*/true).view({n, 1, 1});
  auto dy = params.dy.to(dev, torch::kLong, /*non_blocking=*/true).view({n, 1, 1});
  auto flip = params.flip.to(dev, torch::kBool, /*non_blocking=*/true).view({n, 1, 1});

  // Output pixel (r, col) reads padded pixel (dy + r, dx + col'), col' = col or w-1-col if flipped;
  // one flat index per output pixel lets a single gather do crop and flip for the whole block.
  auto r = torch::arange(h, lopts).view({1, h, 1});
  auto col = torch::arange(w, lopts).view({1, 1, w});
  auto src_col = torch::where(flip, (w - 1) - col, col);
  auto flat = ((dy + r) * pw + (dx + src_col)).view({n, 1, h * w}).expand({n, c, h * w});

  auto padded = pad(images, padding).reshape({n, c, ph * pw});
  // gather lays its output out like the (expanded, channel-stride 0) index, i.e. channels
  // innermost; convolutions on that layout are slower (docs/performance.md), so restore the
  // standard layout.
  return padded.gather(2, flat).view({n, c, h, w}).contiguous();
}

torch::Tensor apply_crop_flip_reference(const torch::Tensor& images, const CropFlipParams& params,
                                        int64_t padding) {
  check_args(images, params, padding);
  const int64_t h = images.size(2), w = images.size(3);
  auto padded = pad(images, padding);
  auto dx = params.dx.cpu(), dy = params.dy.cpu(), flip = params.flip.cpu();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const int64_t x = dx[i].item<int64_t>(), y = dy[i].item<int64_t>();
    auto img = padded[i].slice(1, y, y + h).slice(2, x, x + w);
    if (flip[i].item<bool>()) img = torch::flip(img, {2});
    out.push_back(img);
  }
  if (out.empty()) return images.clone();
  return torch::stack(out);
}

}  // namespace fullbatch
