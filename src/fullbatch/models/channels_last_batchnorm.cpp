#include "fullbatch/models/channels_last_batchnorm.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace fullbatch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows (pixels) per chunk of the sums: each chunk is summed in float (short enough that its
// rounding stays near float precision, on values shifted close to zero), the chunks in double
// and in a fixed order, so the result is the same on any number of threads.
constexpr int64_t kRowsPerChunk = 64;

// The loops below are compiled for AVX-512 and AVX2 as well as the baseline and picked at load
// time: libtorch's own kernels do the same, and without it these loops would be 2-4x slower than
// the kernels they stand beside.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FULLBATCH_ROW_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FULLBATCH_ROW_LOOP
#endif

// The loops run over a channels-last tensor as a flat array in tiles of whole pixels, at least 64
// values long, each per-channel constant repeated to the tile's length: a ResNet's 16 channels
// are too short an inner loop to vectorize well on their own. A range [begin, end) of flat indices
// starts at a pixel boundary; tile position j holds channel j % C.
int64_t tile_length(int64_t channels) {
  constexpr int64_t kMinimum = 64;
  return channels * ((kMinimum + channels - 1) / channels);
}

std::vector<float> tiled(const float* per_channel, int64_t channels) {
  std::vector<float> tile(static_cast<size_t>(tile_length(channels)));
  for (size_t j = 0; j < tile.size(); ++j) tile[j] = per_channel[j % channels];
  return tile;
}

// acc[j] += x - shift, acc[P + j] += (x - shift)^2, P the tile length.
FULLBATCH_ROW_LOOP void add_shifted_moments(const float* __restrict x,
                                            const float* __restrict shift, int64_t tile,
                                            int64_t begin, int64_t end, float* __restrict acc) {
  float* squares = acc + tile;
  for (int64_t i = begin; i < end; i += tile) {
    const float* v = x + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) {
      const float d = v[j] - shift[j];
      acc[j] += d;
      squares[j] += d * d;
    }
  }
}

// acc[j] += gy, acc[P + j] += gy * (x - mean).
FULLBATCH_ROW_LOOP void add_gradient_sums(const float* __restrict gy, const float* __restrict x,
                                          const float* __restrict mean, int64_t tile, int64_t begin,
                                          int64_t end, float* __restrict acc) {
  float* dot = acc + tile;
  for (int64_t i = begin; i < end; i += tile) {
    const float* g = gy + i;
    const float* v = x + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) {
      acc[j] += g[j];
      dot[j] += g[j] * (v[j] - mean[j]);
    }
  }
}

// g = gy where the ReLU's output y was positive, else 0 (its gradient, as libtorch's
// threshold_backward gives it); acc[j] += g, acc[P + j] += g * (x - mean).
FULLBATCH_ROW_LOOP void mask_and_add_gradient_sums(const float* __restrict gy,
                                                   const float* __restrict y,
                                                   const float* __restrict x,
                                                   const float* __restrict mean, int64_t tile,
                                                   int64_t begin, int64_t end, float* __restrict g,
                                                   float* __restrict acc) {
  float* dot = acc + tile;
  for (int64_t i = begin; i < end; i += tile) {
    const float* d = gy + i;
    const float* o = y + i;
    const float* v = x + i;
    float* m = g + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) {
      const float k = o[j] > 0.0f ? d[j] : 0.0f;
      m[j] = k;
      acc[j] += k;
      dot[j] += k * (v[j] - mean[j]);
    }
  }
}

// y = (x - mean) * scale + bias: the normalization, centred first since the mean can be many times
// the spread.
FULLBATCH_ROW_LOOP void normalize(const float* __restrict x, const float* __restrict mean,
                                  const float* __restrict scale, const float* __restrict bias,
                                  int64_t tile, int64_t begin, int64_t end, float* __restrict y) {
  for (int64_t i = begin; i < end; i += tile) {
    const float* v = x + i;
    float* o = y + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) o[j] = (v[j] - mean[j]) * scale[j] + bias[j];
  }
}

// y = max((x - mean) * scale + bias, 0): normalization and ReLU in one pass, each value rounded as
// the separate operations round it.
FULLBATCH_ROW_LOOP void normalize_relu(const float* __restrict x, const float* __restrict mean,
                                       const float* __restrict scale, const float* __restrict bias,
                                       int64_t tile, int64_t begin, int64_t end,
                                       float* __restrict y) {
  for (int64_t i = begin; i < end; i += tile) {
    const float* v = x + i;
    float* o = y + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) o[j] = std::max((v[j] - mean[j]) * scale[j] + bias[j], 0.0f);
  }
}

// y = max((x - mean) * scale + bias + residual, 0): what a residual block does after its last
// BatchNorm, in one pass.
FULLBATCH_ROW_LOOP void normalize_add_relu(const float* __restrict x,
                                           const float* __restrict residual,
                                           const float* __restrict mean,
                                           const float* __restrict scale,
                                           const float* __restrict bias, int64_t tile,
                                           int64_t begin, int64_t end, float* __restrict y) {
  for (int64_t i = begin; i < end; i += tile) {
    const float* v = x + i;
    const float* s = residual + i;
    float* o = y + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j)
      o[j] = std::max((v[j] - mean[j]) * scale[j] + bias[j] + s[j], 0.0f);
  }
}

// gx = gy * scale - (x - mean) * slope - shift.
FULLBATCH_ROW_LOOP void write_input_gradient(const float* __restrict gy, const float* __restrict x,
                                             const float* __restrict mean,
                                             const float* __restrict scale,
                                             const float* __restrict slope,
                                             const float* __restrict shift, int64_t tile,
                                             int64_t begin, int64_t end, float* __restrict gx) {
  for (int64_t i = begin; i < end; i += tile) {
    const float* g = gy + i;
    const float* v = x + i;
    float* o = gx + i;
    const int64_t n = std::min(tile, end - i);
    for (int64_t j = 0; j < n; ++j) o[j] = g[j] * scale[j] - (v[j] - mean[j]) * slope[j] - shift[j];
  }
}

// Runs `loop(begin, end)` over flat index ranges of whole chunks of kRowsPerChunk pixels, in
// parallel.
template <typename Loop>
void for_each_range(int64_t rows, int64_t channels, const Loop& loop) {
  at::parallel_for(0, rows, kRowsPerChunk,
                   [&](int64_t begin, int64_t end) { loop(begin * channels, end * channels); });
}

// Two per-channel sums over all rows: `add(begin, end, acc)` adds the flat range [begin, end) into
// tiled accumulators acc[0 .. 2P) in float. Each chunk of kRowsPerChunk rows starts from zero, its
// tile positions are folded per channel in float, and the chunks are added in double, in order.
// Returns the 2C sums.
template <typename AddRange>
std::vector<double> channel_sums(int64_t rows, int64_t channels, const AddRange& add) {
  const int64_t tile = tile_length(channels);
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial(static_cast<size_t>(chunks * 2 * channels), 0.0f);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(static_cast<size_t>(2 * tile));
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      add(chunk * kRowsPerChunk * channels, std::min(rows, (chunk + 1) * kRowsPerChunk) * channels,
          acc.data());
      float* folded = partial.data() + chunk * 2 * channels;
      for (int64_t half = 0; half < 2; ++half)
        for (int64_t start = 0; start < tile; start += channels)
          for (int64_t c = 0; c < channels; ++c)
            folded[half * channels + c] += acc[half * tile + start + c];
    }
  });
  std::vector<double> total(static_cast<size_t>(2 * channels), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t i = 0; i < 2 * channels; ++i) total[i] += partial[chunk * 2 * channels + i];
  return total;
}

// Gradients of batch normalization written with differentiable tensor operations, the statistics
// recomputed from x: used only when a double backward is being recorded (create_graph), where the
// sums of exact_backward would be constants to autograd.
variable_list recorded_backward(const torch::Tensor& gy, const torch::Tensor& x,
                                const torch::Tensor& weight, double eps) {
  const std::vector<int64_t> dims = {0, 2, 3};
  const torch::Tensor mean = x.mean(dims, /*keepdim=*/true);
  const torch::Tensor centered = x - mean;
  const torch::Tensor invstd = (centered.square().mean(dims, true) + eps).rsqrt();
  const torch::Tensor xhat = centered * invstd;
  const torch::Tensor gxhat = weight.defined() ? gy * weight.view({1, -1, 1, 1}) : gy;
  const torch::Tensor gx =
      invstd * (gxhat - gxhat.mean(dims, true) - xhat * (gxhat * xhat).mean(dims, true));
  if (!weight.defined()) return {gx, torch::Tensor(), torch::Tensor()};
  return {gx, (gy * xhat).sum(dims), gy.sum(dims)};
}

// The training-mode BatchNorm gradients of channels-last float32 data, its two sums chunked as the
// forward's (libtorch's channels-last backward sums them sequentially in float per thread, as its
// forward does): gx = (gy - mean(gy) - xhat * mean(gy * xhat)) * invstd * weight,
// gw = sum(gy * xhat), gb = sum(gy), xhat = (x - mean) * invstd. With `relu_output` defined, gy
// is first masked where that ReLU's output was zero (the ReLU's backward), the masked gradient
// written to `masked` (the gradient of a residual added before the ReLU).
variable_list exact_backward(const torch::Tensor& gy, const torch::Tensor& x,
                             const torch::Tensor& weight, const torch::Tensor& mean,
                             const torch::Tensor& invstd, const torch::Tensor& relu_output,
                             torch::Tensor* masked) {
  const int64_t channels = x.size(1);
  const int64_t rows = x.numel() / channels;
  const int64_t tile = tile_length(channels);
  const float* in = x.data_ptr<float>();
  const std::vector<float> center = tiled(mean.data_ptr<float>(), channels);
  const float* dy = gy.data_ptr<float>();
  std::vector<double> sums;
  if (relu_output.defined()) {
    *masked = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
    const float* on = relu_output.data_ptr<float>();
    float* g = masked->data_ptr<float>();
    sums = channel_sums(rows, channels, [&](int64_t b, int64_t e, float* acc) {
      mask_and_add_gradient_sums(dy, on, in, center.data(), tile, b, e, g, acc);
    });
    dy = g;
  } else {
    sums = channel_sums(rows, channels, [&](int64_t b, int64_t e, float* acc) {
      add_gradient_sums(dy, in, center.data(), tile, b, e, acc);
    });
  }
  const float* is = invstd.data_ptr<float>();
  const float* w = weight.defined() ? weight.data_ptr<float>() : nullptr;
  // gx = gy * scale - (x - mean) * slope - shift, per channel; x - mean first, since the mean can
  // be many times the spread.
  std::vector<float> scale(channels), slope(channels), shift(channels);
  const double n = static_cast<double>(rows);
  for (int64_t c = 0; c < channels; ++c) {
    const double i = is[c], iw = i * (w != nullptr ? w[c] : 1.0);
    scale[c] = static_cast<float>(iw);
    slope[c] = static_cast<float>(i * i * iw * sums[channels + c] / n);
    shift[c] = static_cast<float>(sums[c] / n * iw);
  }
  const std::vector<float> scale_t = tiled(scale.data(), channels),
                           slope_t = tiled(slope.data(), channels),
                           shift_t = tiled(shift.data(), channels);
  torch::Tensor gx = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
  float* out = gx.data_ptr<float>();
  for_each_range(rows, channels, [&](int64_t begin, int64_t end) {
    write_input_gradient(dy, in, center.data(), scale_t.data(), slope_t.data(), shift_t.data(),
                         tile, begin, end, out);
  });
  if (!weight.defined()) return {gx, torch::Tensor(), torch::Tensor()};
  torch::Tensor gw = torch::empty({channels}, torch::kFloat);
  torch::Tensor gb = torch::empty({channels}, torch::kFloat);
  for (int64_t c = 0; c < channels; ++c) {
    gw.data_ptr<float>()[c] = static_cast<float>(sums[channels + c] * is[c]);
    gb.data_ptr<float>()[c] = static_cast<float>(sums[c]);
  }
  return {gx, gw, gb};
}

// y = (x - mean) * invstd * weight + bias with given statistics, optionally followed in the same
// pass by a ReLU, or a residual sum and a ReLU (relu(y + residual), what a residual block does
// after its last BatchNorm): one read of x and one write of the output instead of three passes.
// The backward is training-mode batch normalization's (the statistics depend on x) after the
// ReLU's.
struct NormalizeWithMoments : torch::autograd::Function<NormalizeWithMoments> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& var, double eps,
                               const torch::Tensor& residual, bool relu) {
    const int64_t channels = x.size(1);
    const int64_t rows = x.numel() / channels;
    const int64_t tile = tile_length(channels);
    const bool affine = weight.numel() > 0;
    const float* v = var.data_ptr<float>();
    torch::Tensor invstd = torch::empty({channels}, torch::kFloat);
    std::vector<float> scale(channels), shift(channels, 0.0f);
    for (int64_t c = 0; c < channels; ++c) {
      const double i = 1.0 / std::sqrt(static_cast<double>(v[c]) + eps);
      invstd.data_ptr<float>()[c] = static_cast<float>(i);
      scale[c] = static_cast<float>(affine ? i * weight.data_ptr<float>()[c] : i);
      if (bias.numel() > 0) shift[c] = bias.data_ptr<float>()[c];
    }
    const std::vector<float> mean_t = tiled(mean.data_ptr<float>(), channels),
                             scale_t = tiled(scale.data(), channels),
                             shift_t = tiled(shift.data(), channels);
    const bool has_residual = residual.numel() > 0;
    const torch::Tensor res =
        has_residual ? residual.contiguous(torch::MemoryFormat::ChannelsLast) : torch::Tensor();
    torch::Tensor y = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
    const float* in = x.data_ptr<float>();
    float* out = y.data_ptr<float>();
    const float *m = mean_t.data(), *a = scale_t.data(), *b = shift_t.data();
    for_each_range(rows, channels, [&](int64_t begin, int64_t end) {
      if (has_residual && relu)
        normalize_add_relu(in, res.data_ptr<float>(), m, a, b, tile, begin, end, out);
      else if (relu)
        normalize_relu(in, m, a, b, tile, begin, end, out);
      else
        normalize(in, m, a, b, tile, begin, end, out);
    });
    TORCH_CHECK(relu || !has_residual, "NormalizeWithMoments: a residual comes with the ReLU");
    ctx->save_for_backward(
        {x, affine ? weight : torch::Tensor(), mean, invstd, relu ? y : torch::Tensor()});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["residual"] = has_residual;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3],
                        &relu_output = saved[4];
    const double eps = ctx->saved_data["eps"].toDouble();
    const bool residual = ctx->saved_data["residual"].toBool();
    const torch::Tensor gy = grads[0].contiguous(x.suggest_memory_format());
    torch::Tensor g = gy;  // the gradient before the ReLU: the residual's
    variable_list gx;
    if (torch::GradMode::is_enabled()) {
      if (relu_output.defined()) g = gy * relu_output.gt(0).to(gy.scalar_type());
      gx = recorded_backward(g, x, weight, eps);
    } else {
      gx = exact_backward(gy, x, weight, mean, invstd, relu_output, &g);
    }
    return {gx[0],
            gx[1],
            gx[2],
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            residual ? g : torch::Tensor(),
            torch::Tensor()};
  }
};

void update_running_stats(const torch::Tensor& running_mean, const torch::Tensor& running_var,
                          const torch::Tensor& mean, const torch::Tensor& var, int64_t count,
                          double momentum) {
  torch::NoGradGuard no_grad;
  const double unbias = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1;
  if (running_mean.defined()) running_mean.mul_(1 - momentum).add_(mean, momentum);
  if (running_var.defined()) running_var.mul_(1 - momentum).add_(var, momentum * unbias);
}

}  // namespace

bool wants_exact_channels_last_moments(const torch::Tensor& x) {
  return x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
         x.is_contiguous(torch::MemoryFormat::ChannelsLast) && !x.is_contiguous() && x.numel() > 0;
}

std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x) {
  TORCH_CHECK(wants_exact_channels_last_moments(x),
              "channel_moments: expected a channels-last float32 CPU tensor");
  const int64_t channels = x.size(1);
  const int64_t rows = x.numel() / channels;
  const float* data = x.data_ptr<float>();
  // Sums of x - shift, with shift the first pixel's values: within the spread of the data, so the
  // float sums of a chunk and the variance below do not cancel a large mean.
  const std::vector<float> shift = tiled(data, channels);
  const int64_t tile = tile_length(channels);
  const std::vector<double> sums =
      channel_sums(rows, channels, [&](int64_t b, int64_t e, float* acc) {
        add_shifted_moments(data, shift.data(), tile, b, e, acc);
      });
  auto mean = torch::empty({channels}, torch::kDouble);
  auto var = torch::empty({channels}, torch::kDouble);
  double* m = mean.data_ptr<double>();
  double* v = var.data_ptr<double>();
  const double n = static_cast<double>(rows);
  for (int64_t c = 0; c < channels; ++c) {
    const double d = sums[c] / n;
    m[c] = shift[c] + d;
    v[c] = std::max(sums[channels + c] / n - d * d, 0.0);
  }
  return {mean.to(torch::kFloat), var.to(torch::kFloat)};
}

namespace {

torch::Tensor normalize_with_batch_moments(const torch::Tensor& x, const torch::Tensor& weight,
                                           const torch::Tensor& bias,
                                           const torch::Tensor& running_mean,
                                           const torch::Tensor& running_var, double momentum,
                                           double eps, const torch::Tensor& residual, bool relu) {
  torch::Tensor mean, var;
  {
    torch::NoGradGuard no_grad;
    std::tie(mean, var) = channel_moments(x.detach());
  }
  update_running_stats(running_mean, running_var, mean, var, x.numel() / x.size(1), momentum);
  // libtorch 1.13's custom functions take no undefined tensors as inputs: an absent weight, bias or
  // residual travels as an empty one.
  const auto present = [&](const torch::Tensor& t) { return t.defined() ? t : x.new_empty({0}); };
  return NormalizeWithMoments::apply(x, present(weight), present(bias), mean, var, eps,
                                     present(residual), relu);
}

}  // namespace

torch::Tensor channels_last_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                                       const torch::Tensor& bias, const torch::Tensor& running_mean,
                                       const torch::Tensor& running_var, double momentum,
                                       double eps) {
  return normalize_with_batch_moments(x, weight, bias, running_mean, running_var, momentum, eps,
                                      torch::Tensor(), /*relu=*/false);
}

torch::Tensor channels_last_batch_norm_relu(const torch::Tensor& x, const torch::Tensor& weight,
                                            const torch::Tensor& bias,
                                            const torch::Tensor& running_mean,
                                            const torch::Tensor& running_var, double momentum,
                                            double eps, const torch::Tensor& residual) {
  TORCH_CHECK(!residual.defined() || residual.sizes() == x.sizes(),
              "channels_last_batch_norm_relu: the residual's shape ", residual.sizes(),
              " differs from the input's ", x.sizes());
  TORCH_CHECK(!residual.defined() ||
                  (residual.scalar_type() == torch::kFloat && residual.device() == x.device()),
              "channels_last_batch_norm_relu: the residual must be float32 on the input's device");
  return normalize_with_batch_moments(x, weight, bias, running_mean, running_var, momentum, eps,
                                      residual, /*relu=*/true);
}

}  // namespace fullbatch
