#include "fullbatch/analysis/probes.h"

#include <torch/torch.h>

#include <cmath>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/param_snapshot.h"

namespace fullbatch {
namespace {

double norm_of(const TensorList& t) { return global_norm(t).item<double>(); }

TensorList difference(const TensorList& a, const TensorList& b) {
  TensorList d;
  for (size_t i = 0; i < a.size(); ++i) d.push_back(a[i].to(torch::kFloat64) - b[i].to(torch::kFloat64));
  return d;
}

torch::Device device_of(const TensorList& params) {
  return params.empty() ? torch::Device(torch::kCPU) : params[0].device();
}

// The objective's loss at theta + t d (parameters restored afterwards).
double loss_along(TrainingObjective& objective, const TensorList& direction, double t) {
  ParameterSnapshot snapshot(objective.params());
  snapshot.add(direction, t);
  const double loss = objective.value(false).loss;
  snapshot.restore();
  return loss;
}

}  // namespace

LinearOperator hessian_operator(TrainingObjective& objective) {
  return [&objective](const torch::Tensor& v) {
    const TensorList hv = objective.hessian_vector_product(unflatten_like(v, objective.params()));
    return flatten_to_vector(hv);
  };
}

Curvature measure_curvature(TrainingObjective& objective, const CurvatureOptions& options) {
  const Clock::time_point start = Clock::now();
  int64_t dim = 0;
  for (const auto& p : objective.params()) dim += p.numel();
  const torch::Device device = device_of(objective.params());
  Curvature c;
  const LinearOperator op = hessian_operator(objective);
  c.top = lanczos_top_eigenvalues(op, dim, device, options.lanczos);
  if (options.trace_samples > 0)
    c.trace = hutchinson_trace(op, dim, device, options.trace_samples, options.lanczos.seed);
  c.seconds = seconds_since(start);
  return c;
}

std::vector<FiniteDifferenceError> finite_difference_error(TrainingObjective& objective,
                                                           const std::vector<double>& eps) {
  const TensorList& params = objective.params();
  const size_t n = eps.size();
  // Per eps: sum of image-weighted errors (forward, central), then max (forward, central).
  std::vector<double> sums(2 * n, 0.0);
  std::vector<double> maxima(2 * n * objective.num_blocks(), 0.0);
  objective.for_each_block([&](int64_t b, const Block&, const BlockForward& forward) {
    const BlockGradient g = block_gradient(forward, params);
    const TensorList& v = g.grads;
    const TensorList exact = exact_hessian_vector_product(forward, params, v);
    const double exact_norm = norm_of(exact);
    const double weight = static_cast<double>(objective.block_images(b)) / objective.images();
    for (size_t e = 0; e < n; ++e) {
      const double eps_n = normalized_step(v, eps[e]);
      if (eps_n == 0.0 || exact_norm == 0.0) continue;
      for (int central = 0; central < 2; ++central) {
        const TensorList fd = hessian_by_differences(
            forward, params, v, v, eps_n,
            central ? GradRegImpl::kCentralDifferences : GradRegImpl::kForwardDifferences);
        const double error = norm_of(difference(fd, exact)) / exact_norm;
        sums[2 * e + central] += weight * error;
        maxima[(2 * e + central) * objective.num_blocks() + b] = error;
      }
    }
  });
  const torch::Device device = device_of(params);
  sums = sum_over_ranks(objective.comm(), sums, device);
  maxima = sum_over_ranks(objective.comm(), maxima, device);  // each block is one rank's
  std::vector<FiniteDifferenceError> out;
  for (size_t e = 0; e < n; ++e) {
    FiniteDifferenceError r;
    r.eps = eps[e];
    r.forward_mean = sums[2 * e];
    r.central_mean = sums[2 * e + 1];
    for (int64_t b = 0; b < objective.num_blocks(); ++b) {
      r.forward_max = std::max(r.forward_max, maxima[(2 * e) * objective.num_blocks() + b]);
      r.central_max = std::max(r.central_max, maxima[(2 * e + 1) * objective.num_blocks() + b]);
    }
    out.push_back(r);
  }
  return out;
}

Sharpness sam_sharpness(TrainingObjective& objective, double rho) {
  const ObjectiveValue at = objective.value(true);
  Sharpness s;
  s.rho = rho;
  s.loss = at.loss;
  const double g_norm = norm_of(at.gradient);
  s.perturbed_loss = g_norm > 0 ? loss_along(objective, at.gradient, rho / g_norm) : at.loss;
  s.sharpness = s.perturbed_loss - s.loss;
  return s;
}

Flatness empirical_flatness(TrainingObjective& objective, const TensorList& direction,
                            double threshold, double increment, int64_t max_steps) {
  Flatness f;
  f.loss = objective.value(false).loss;
  double loss = f.loss;
  while (loss <= threshold && f.steps < max_steps) {  // NaN ends the walk as exceeded
    ++f.steps;
    loss = loss_along(objective, direction, increment * static_cast<double>(f.steps));
  }
  f.exceeded = !(loss <= threshold);
  // The reference (perturb2threshold) returns the counter k of the first point theta_k whose
  // loss exceeds the threshold: with losses [0.5, 2] and threshold 1 that is 1.
  const double d_norm = norm_of(direction);
  f.loss_at_end = loss;
  f.reference_value = d_norm * static_cast<double>(f.steps);
  f.distance = increment * f.reference_value;
  return f;
}

GradientStatistics gradient_statistics(TrainingObjective& objective, const TensorList& momentum) {
  const TensorList& params = objective.params();
  TensorList sum, sum_sq;
  for (const auto& p : params) {
    sum.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
    sum_sq.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
  }
  TensorList full;
  for (const auto& p : params) full.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
  std::vector<double> block_sq(objective.num_blocks(), 0.0);
  objective.for_each_block([&](int64_t b, const Block&, const BlockForward& forward) {
    const BlockGradient g = block_gradient(forward, params);
    torch::NoGradGuard no_grad;
    const double weight = objective.block_weight();
    for (size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor gi = g.grads[i].to(torch::kFloat64);
      sum[i].add_(gi);
      sum_sq[i].add_(gi * gi);
      full[i].add_(gi, weight);
    }
    const double norm = norm_of(g.grads);
    block_sq[b] = norm * norm;
  });
  sum_over_ranks(objective.comm(), sum);
  sum_over_ranks(objective.comm(), sum_sq);
  sum_over_ranks(objective.comm(), full);
  block_sq = sum_over_ranks(objective.comm(), block_sq, device_of(params));

  torch::NoGradGuard no_grad;
  GradientStatistics s;
  s.parameter_norm = norm_of(params);
  s.gradient_norm = norm_of(full);
  const double blocks = static_cast<double>(objective.num_blocks());
  for (double sq : block_sq) s.block_gradient_norms.push_back(std::sqrt(sq));
  // Per coordinate over blocks: mean mu and unbiased variance (E[g^2] - mu^2) n / (n - 1).
  double mu_sq = 0, sigma_sq = 0, small_sq = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor mean = sum[i] / blocks;
    mu_sq += (mean * mean).sum().item<double>();
    small_sq += sum_sq[i].sum().item<double>() / blocks;
    if (blocks > 1)
      sigma_sq += ((sum_sq[i] - blocks * mean * mean) / (blocks - 1)).clamp_min(0).sum().item<double>();
  }
  s.signal_to_noise = std::sqrt(mu_sq) / (std::sqrt(sigma_sq) + 1e-10);
  const double b = static_cast<double>(objective.block_images(0));
  const double n = static_cast<double>(objective.images());
  if (n > b) {
    const double noise = (small_sq - mu_sq) / (1.0 / b - 1.0 / n);
    const double signal = (n * mu_sq - b * small_sq) / (n - b);
    if (signal != 0)
      s.noise_scale = noise / signal;
    else
      s.noise_scale_reason = "the estimate of |G|^2 is 0";
  } else {
    s.noise_scale_reason = "B_simple needs more images than one block (used " +
                           std::to_string(objective.images()) + ", block " +
                           std::to_string(objective.block_images(0)) + ")";
  }
  if (!momentum.empty()) {
    const double mn = norm_of(momentum);
    double inner = 0;
    for (size_t i = 0; i < params.size(); ++i)
      inner += (momentum[i].to(torch::kFloat64) * full[i]).sum().item<double>();
    s.momentum_cosine = (mn > 0 && s.gradient_norm > 0) ? inner / (mn * s.gradient_norm) : 0.0;
  }
  return s;
}

}  // namespace fullbatch
