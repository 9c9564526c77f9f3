#include "fullbatch/data/augment.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

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

// torchvision's RandomResizedCrop defaults.
constexpr int kCropAttempts = 10;
constexpr double kMinArea = 0.08, kMaxArea = 1.0;
constexpr double kMinRatio = 3.0 / 4.0, kMaxRatio = 4.0 / 3.0;

// Python's round(): an exact half goes to the even neighbour.
int64_t round_half_even(double x) {
  double r = std::floor(x + 0.5);
  if (r - x == 0.5 && std::fmod(r, 2.0) != 0.0) r -= 1.0;
  return static_cast<int64_t>(r);
}

void check_resized_args(const torch::Tensor& images, const ResizedCropParams& p,
                        int64_t out_pixels) {
  if (images.dim() != 4) {
    throw std::invalid_argument("random-resized-crop: images must be [n, C, H, W]");
  }
  if (out_pixels <= 0) throw std::invalid_argument("random-resized-crop: out_pixels must be > 0");
  if (images.scalar_type() != torch::kUInt8 && !images.is_floating_point()) {
    throw std::invalid_argument("random-resized-crop: images must be uint8 or floating point");
  }
  const int64_t n = images.size(0);
  if (p.top.numel() != n || p.left.numel() != n || p.height.numel() != n || p.width.numel() != n ||
      p.flip.numel() != n) {
    throw std::invalid_argument("random-resized-crop: " + std::to_string(n) +
                                " images but params for a different count");
  }
}

// Back to the input's type: uint8 rounded and clamped (PIL stores its resized crop as bytes).
torch::Tensor like_input(const torch::Tensor& out, const torch::Tensor& images) {
  if (images.is_floating_point()) return out;
  return out.round().clamp(0, 255).to(images.scalar_type());
}

// Sample positions along one axis, [n, P], in input pixels (pixel centres at integers): output
// pixel o of a box [start, start + len) resized to P reads start + (o + 0.5) * len / P - 0.5, as
// interpolate(align_corners=false) on the cropped box, kept inside the box (interpolate clamps at
// the box's edges: it never reads outside the crop).
torch::Tensor box_positions(const torch::Tensor& start, const torch::Tensor& len, int64_t p) {
  auto o = torch::arange(p, start.options()).view({1, p}).add(0.5);
  auto pos = start + o * (len / static_cast<double>(p)) - 0.5;
  return torch::minimum(torch::maximum(pos, start), start + len - 1);
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

ResizedCropParams ResizedCropParams::slice(int64_t begin, int64_t end) const {
  return {top.slice(0, begin, end), left.slice(0, begin, end), height.slice(0, begin, end),
          width.slice(0, begin, end), flip.slice(0, begin, end)};
}

ResizedCropParams draw_resized_crop(int64_t n, int64_t height, int64_t width, at::Generator& gen) {
  if (n < 0 || height <= 0 || width <= 0) {
    throw std::invalid_argument("random-resized-crop: needs n >= 0 and a non-empty image");
  }
  // Every uniform drawn up front, in a fixed order, whichever attempt is taken.
  auto area_u = torch::rand({n, kCropAttempts}, gen, torch::kDouble);
  auto ratio_u = torch::rand({n, kCropAttempts}, gen, torch::kDouble);
  auto pos_u = torch::rand({n, 2}, gen, torch::kDouble);
  ResizedCropParams p;
  p.flip = torch::bernoulli(torch::full({n}, 0.5, torch::kFloat), gen).to(torch::kBool);
  p.top = torch::empty({n}, torch::kLong);
  p.left = torch::empty({n}, torch::kLong);
  p.height = torch::empty({n}, torch::kLong);
  p.width = torch::empty({n}, torch::kLong);
  auto au = area_u.accessor<double, 2>();
  auto ru = ratio_u.accessor<double, 2>();
  auto pu = pos_u.accessor<double, 2>();
  auto top = p.top.accessor<int64_t, 1>(), left = p.left.accessor<int64_t, 1>();
  auto hh = p.height.accessor<int64_t, 1>(), ww = p.width.accessor<int64_t, 1>();
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(kMinRatio), log_hi = std::log(kMaxRatio);
  for (int64_t i = 0; i < n; ++i) {
    int64_t h = 0, w = 0;
    bool placed = false;
    for (int a = 0; a < kCropAttempts && !placed; ++a) {
      const double target = area * (kMinArea + (kMaxArea - kMinArea) * au[i][a]);
      const double ratio = std::exp(log_lo + (log_hi - log_lo) * ru[i][a]);
      w = round_half_even(std::sqrt(target * ratio));
      h = round_half_even(std::sqrt(target / ratio));
      placed = 0 < w && w <= width && 0 < h && h <= height;
    }
    if (placed) {
      // torch.randint(0, height - h + 1) and (0, width - w + 1): uniform over the positions.
      top[i] = std::min(static_cast<int64_t>(pu[i][0] * static_cast<double>(height - h + 1)),
                        height - h);
      left[i] =
          std::min(static_cast<int64_t>(pu[i][1] * static_cast<double>(width - w + 1)), width - w);
    } else {
      // torchvision's fallback: the whole image, narrowed to the nearest allowed ratio, centred.
      const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
      w = width;
      h = height;
      if (in_ratio < kMinRatio) {
        h = round_half_even(static_cast<double>(w) / kMinRatio);
      } else if (in_ratio > kMaxRatio) {
        w = round_half_even(static_cast<double>(h) * kMaxRatio);
      }
      top[i] = (height - h) / 2;
      left[i] = (width - w) / 2;
    }
    hh[i] = h;
    ww[i] = w;
  }
  return p;
}

torch::Tensor apply_resized_crop(const torch::Tensor& images, const ResizedCropParams& params,
                                 int64_t out_pixels) {
  check_resized_args(images, params, out_pixels);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t p = out_pixels;
  if (n == 0) return torch::empty({0, c, p, p}, images.options());
  const auto dev = images.device();
  // non_blocking: no stream synchronization per block (see apply_crop_flip).
  auto as_float = [&](const torch::Tensor& t) {
    return t.to(dev, torch::kFloat, /*non_blocking=*/true).view({n, 1});
  };
  auto xs = box_positions(as_float(params.left), as_float(params.width), p);
  auto ys = box_positions(as_float(params.top), as_float(params.height), p);
  // A flipped output column o reads the unflipped column p - 1 - o.
  auto flip = params.flip.to(dev, torch::kBool, /*non_blocking=*/true).view({n, 1});
  xs = torch::where(flip, xs.flip({1}), xs);
  // grid_sample's coordinates with align_corners=false: pixel x sits at (2x + 1) / W - 1.
  auto gx = xs.mul(2.0).add(1.0).div(static_cast<double>(w)).sub(1.0);
  auto gy = ys.mul(2.0).add(1.0).div(static_cast<double>(h)).sub(1.0);
  auto grid =
      torch::stack({gx.view({n, 1, p}).expand({n, p, p}), gy.view({n, p, 1}).expand({n, p, p})}, 3);
  auto x = images.is_floating_point() ? images : images.to(torch::kFloat);
  // interpolation 0 = bilinear, padding 1 = border (positions are inside the box; border only
  // guards against a position rounding a hair past the last pixel).
  auto out = torch::grid_sampler(x, grid.to(x.scalar_type()), 0, 1, /*align_corners=*/false);
  return like_input(out, images);
}

torch::Tensor apply_resized_crop_reference(const torch::Tensor& images,
                                           const ResizedCropParams& params, int64_t out_pixels) {
  check_resized_args(images, params, out_pixels);
  const int64_t p = out_pixels;
  if (images.size(0) == 0) return torch::empty({0, images.size(1), p, p}, images.options());
  auto top = params.top.cpu(), left = params.left.cpu(), height = params.height.cpu();
  auto width = params.width.cpu(), flip = params.flip.cpu();
  namespace F = torch::nn::functional;
  const auto opts = F::InterpolateFuncOptions()
                        .size(std::vector<int64_t>{p, p})
                        .mode(torch::kBilinear)
                        .align_corners(false);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const int64_t y = top[i].item<int64_t>(), x = left[i].item<int64_t>();
    auto box = images[i]
                   .slice(1, y, y + height[i].item<int64_t>())
                   .slice(2, x, x + width[i].item<int64_t>())
                   .unsqueeze(0);
    auto img = F::interpolate(
        box.to(images.is_floating_point() ? images.scalar_type() : torch::kFloat), opts)[0];
    if (flip[i].item<bool>()) img = torch::flip(img, {2});
    out.push_back(img);
  }
  return like_input(torch::stack(out), images);
}

}  // namespace fullbatch
