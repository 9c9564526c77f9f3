#include "fullbatch/models/channels_last_batchnorm.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace fullbatch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows (pixels) per chunk of the sums: each chunk is summed in float (short enough that its
// rounding stays near float precision, on values shifted close to zero), the chunks in double
// and in a fixed order, so the result is the same on any number of threads.
constexpr int64_t kRowsPerChunk = 64;

// The row loops below are compiled for AVX2 as well as the baseline and picked at load time:
// libtorch's own kernels do the same, and without it these loops would be 2-4x slower than the
// kernels they stand beside.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FULLBATCH_ROW_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define FULLBATCH_ROW_LOOP
#endif

// acc[c] += x - shift, acc[C + c] += (x - shift)^2 over rows [begin, end).
FULLBATCH_ROW_LOOP void add_shifted_moments(const float* __restrict x,
                                            const float* __restrict shift, int64_t channels,
                                            int64_t begin, int64_t end, float* __restrict acc) {
  float* squares = acc + channels;
  for (int64_t r = begin; r < end; ++r) {
    const float* row = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const float d = row[c] - shift[c];
      acc[c] += d;
      squares[c] += d * d;
    }
  }
}

// acc[c] += gy, acc[C + c] += gy * (x - mean) over rows [begin, end).
FULLBATCH_ROW_LOOP void add_gradient_sums(const float* __restrict gy, const float* __restrict x,
                                          const float* __restrict mean, int64_t channels,
                                          int64_t begin, int64_t end, float* __restrict acc) {
  float* dot = acc + channels;
  for (int64_t r = begin; r < end; ++r) {
    const float* g = gy + r * channels;
    const float* v = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      acc[c] += g[c];
      dot[c] += g[c] * (v[c] - mean[c]);
    }
  }
}

// gx = gy * scale - (x - mean) * slope - shift over rows [begin, end).
FULLBATCH_ROW_LOOP void write_input_gradient(const float* __restrict gy, const float* __restrict x,
                                             const float* __restrict mean,
                                             const float* __restrict scale,
                                             const float* __restrict slope,
                                             const float* __restrict shift, int64_t channels,
                                             int64_t begin, int64_t end, float* __restrict gx) {
  for (int64_t r = begin; r < end; ++r) {
    const float* g = gy + r * channels;
    const float* v = x + r * channels;
    float* o = gx + r * channels;
    for (int64_t c = 0; c < channels; ++c)
      o[c] = g[c] * scale[c] - (v[c] - mean[c]) * slope[c] - shift[c];
  }
}

// Two per-channel sums over all rows: `add(begin, end, acc)` adds rows [begin, end) into
// acc[0 .. 2C) in float; each chunk of kRowsPerChunk rows starts from zero and the chunks are added
// in double, in order.
template <typename AddRows>
std::vector<double> channel_sums(int64_t rows, int64_t channels, const AddRows& add) {
  const int64_t width = 2 * channels;
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial(static_cast<size_t>(chunks * width), 0.0f);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk)
      add(chunk * kRowsPerChunk, std::min(rows, (chunk + 1) * kRowsPerChunk),
          partial.data() + chunk * width);
  });
  std::vector<double> total(static_cast<size_t>(width), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t i = 0; i < width; ++i) total[i] += partial[chunk * width + i];
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
// gw = sum(gy * xhat), gb = sum(gy), xhat = (x - mean) * invstd.
variable_list exact_backward(const torch::Tensor& gy, const torch::Tensor& x,
                             const torch::Tensor& weight, const torch::Tensor& mean,
                             const torch::Tensor& invstd) {
  const int64_t channels = x.size(1);
  const int64_t rows = x.numel() / channels;
  const float* dy = gy.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  const float* center = mean.data_ptr<float>();
  const std::vector<double> sums =
      channel_sums(rows, channels, [&](int64_t b, int64_t e, float* acc) {
        add_gradient_sums(dy, in, center, channels, b, e, acc);
      });
  const torch::Tensor invstd64 = invstd.to(torch::kDouble);
  const double* is = invstd64.data_ptr<double>();
  const torch::Tensor w64 = weight.defined() ? weight.detach().to(torch::kDouble)
                                             : torch::ones({channels}, torch::kDouble);
  const double* w = w64.data_ptr<double>();
  // gx = gy * scale - (x - mean) * slope - shift, per channel; x - mean first, since the mean can
  // be many times the spread.
  std::vector<float> scale(channels), slope(channels), shift(channels);
  const double n = static_cast<double>(rows);
  for (int64_t c = 0; c < channels; ++c) {
    scale[c] = static_cast<float>(is[c] * w[c]);
    slope[c] = static_cast<float>(is[c] * is[c] * is[c] * w[c] * sums[channels + c] / n);
    shift[c] = static_cast<float>(sums[c] / n * is[c] * w[c]);
  }
  torch::Tensor gx = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
  float* out = gx.data_ptr<float>();
  at::parallel_for(0, rows, kRowsPerChunk, [&](int64_t begin, int64_t end) {
    write_input_gradient(dy, in, center, scale.data(), slope.data(), shift.data(), channels, begin,
                         end, out);
  });
  if (!weight.defined()) return {gx, torch::Tensor(), torch::Tensor()};
  torch::Tensor gw = torch::empty({channels}, torch::kDouble);
  torch::Tensor gb = torch::empty({channels}, torch::kDouble);
  for (int64_t c = 0; c < channels; ++c) {
    gw.data_ptr<double>()[c] = sums[channels + c] * is[c];
    gb.data_ptr<double>()[c] = sums[c];
  }
  return {gx, gw.to(weight.scalar_type()), gb.to(weight.scalar_type())};
}

// y = (x - mean) * invstd * weight + bias with given statistics; the backward is training-mode
// batch normalization's (the statistics depend on x).
struct NormalizeWithMoments : torch::autograd::Function<NormalizeWithMoments> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& var, double eps) {
    // An affine-free BatchNorm's weight and bias arrive as empty tensors (see apply's caller).
    const torch::Tensor w = weight.numel() > 0 ? weight : torch::Tensor();
    const torch::Tensor b = bias.numel() > 0 ? bias : torch::Tensor();
    // Inference-form native_batch_norm normalizes with the statistics it is given, through the
    // channels-last kernel, and collects none.
    torch::Tensor y =
        std::get<0>(at::native_batch_norm(x, w, b, mean, var, /*training=*/false, 0.0, eps));
    const torch::Tensor invstd = (var.to(torch::kDouble) + eps).rsqrt().to(var.scalar_type());
    ctx->save_for_backward({x, w, mean, invstd});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor gy = grads[0].contiguous(x.suggest_memory_format());
    const variable_list g = torch::GradMode::is_enabled()
                                ? recorded_backward(gy, x, weight, eps)
                                : exact_backward(gy, x, weight, mean, invstd);
    return {g[0], g[1], g[2], torch::Tensor(), torch::Tensor(), torch::Tensor()};
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
  const std::vector<float> shift(data, data + channels);
  const std::vector<double> sums =
      channel_sums(rows, channels, [&](int64_t b, int64_t e, float* acc) {
        add_shifted_moments(data, shift.data(), channels, b, e, acc);
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

torch::Tensor channels_last_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                                       const torch::Tensor& bias, const torch::Tensor& running_mean,
                                       const torch::Tensor& running_var, double momentum,
                                       double eps) {
  torch::Tensor mean, var;
  {
    torch::NoGradGuard no_grad;
    std::tie(mean, var) = channel_moments(x.detach());
  }
  update_running_stats(running_mean, running_var, mean, var, x.numel() / x.size(1), momentum);
  // libtorch 1.13's custom functions reject undefined tensor inputs: an affine-free BatchNorm's
  // absent weight and bias travel as empty tensors.
  const auto present = [&](const torch::Tensor& t) { return t.defined() ? t : x.new_empty({0}); };
  return NormalizeWithMoments::apply(x, present(weight), present(bias), mean, var, eps);
}

}  // namespace fullbatch
