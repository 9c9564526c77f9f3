#include "fullbatch/analysis/curvature.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"

namespace fullbatch {
namespace {

constexpr uint64_t kLanczosStart = 1;
constexpr uint64_t kHutchinsonProbe = 2;

torch::Tensor gaussian(int64_t dim, uint64_t seed, uint64_t purpose, uint64_t index,
                       const torch::Device& device) {
  at::Generator gen = keyed_generator(seed, Stream::kAnalysis, {purpose, index});
  return torch::randn({dim}, gen, torch::kFloat64).to(device);
}

double inner_product(const torch::Tensor& a, const torch::Tensor& b) { return a.dot(b).item<double>(); }

}  // namespace

torch::Tensor flatten_to_vector(const TensorList& tensors) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.detach().reshape(-1).to(torch::kFloat64));
  return parts.empty() ? torch::zeros({0}, torch::kFloat64) : torch::cat(parts);
}

TensorList unflatten_like(const torch::Tensor& vector, const TensorList& like) {
  TensorList out;
  int64_t offset = 0;
  for (const auto& t : like) {
    const int64_t n = t.numel();
    out.push_back(vector.slice(0, offset, offset + n).reshape(t.sizes()).to(t.scalar_type()));
    offset += n;
  }
  return out;
}

EigenResult lanczos_top_eigenvalues(const LinearOperator& op, int64_t dim, const torch::Device& device,
                                    const LanczosOptions& o) {
  if (dim < 1) throw UserError("analysis: the model has no trainable parameters");
  if (o.eigenvalues < 1) throw UserError("analysis.eigenvalues must be >= 1");
  torch::NoGradGuard no_grad;
  const int64_t m_max = std::min(o.max_iterations, dim);
  const int64_t k = std::min(o.eigenvalues, m_max);
  std::vector<torch::Tensor> basis;
  std::vector<double> alpha, beta;
  torch::Tensor q = gaussian(dim, o.seed, kLanczosStart, 0, device);
  q = q / q.norm();
  EigenResult result;
  for (int64_t j = 0; j < m_max; ++j) {
    basis.push_back(q);
    torch::Tensor w = op(q).to(torch::kFloat64);
    ++result.products;
    const double a = inner_product(w, q);
    alpha.push_back(a);
    // Full reorthogonalization, twice ("twice is enough"): without it the Krylov vectors lose
    // orthogonality in floating point and Lanczos reports ghost copies of the top eigenvalue.
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& v : basis) w = w - inner_product(w, v) * v;
    const double b = w.norm().item<double>();

    const int64_t n = static_cast<int64_t>(alpha.size());
    torch::Tensor t = torch::zeros({n, n}, torch::kFloat64);
    for (int64_t i = 0; i < n; ++i) {
      t[i][i] = alpha[i];
      if (i + 1 < n) t[i][i + 1] = t[i + 1][i] = beta[i];
    }
    auto [values, vectors] = torch::linalg_eigh(t, "L");  // ascending
    result.eigenvalues.clear();
    result.residuals.clear();
    const int64_t found = std::min(k, n);
    for (int64_t i = 0; i < found; ++i) {
      const int64_t col = n - 1 - i;
      result.eigenvalues.push_back(values[col].item<double>());
      result.residuals.push_back(std::abs(b * vectors[n - 1][col].item<double>()));
    }
    const double scale = std::max(std::abs(result.eigenvalues[0]), 1e-300);
    const bool invariant = b <= 1e-10 * std::max(scale, std::abs(a));
    bool within = found == k;
    for (int64_t i = 0; i < found && within; ++i)
      within = result.residuals[i] <= o.tolerance * std::max(std::abs(result.eigenvalues[i]), 1e-300);
    if (invariant || within) {
      result.converged = true;
      break;
    }
    beta.push_back(b);
    q = w / b;
  }
  return result;
}

TraceResult hutchinson_trace(const LinearOperator& op, int64_t dim, const torch::Device& device,
                             int64_t samples, uint64_t seed) {
  if (samples < 1) throw UserError("analysis.trace_samples must be >= 1");
  torch::NoGradGuard no_grad;
  std::vector<double> estimates;
  for (int64_t s = 0; s < samples; ++s) {
    at::Generator gen = keyed_generator(seed, Stream::kAnalysis, {kHutchinsonProbe, static_cast<uint64_t>(s)});
    torch::Tensor z = torch::randint(0, 2, {dim}, gen, torch::kFloat64).mul_(2).sub_(1).to(device);
    estimates.push_back(inner_product(z, op(z).to(torch::kFloat64)));
  }
  double mean = 0;
  for (double e : estimates) mean += e;
  mean /= samples;
  double var = 0;
  for (double e : estimates) var += (e - mean) * (e - mean);
  TraceResult r;
  r.trace = mean;
  r.std_error = samples > 1 ? std::sqrt(var / (samples - 1) / samples) : 0.0;
  r.products = samples;
  return r;
}

}  // namespace fullbatch
