#pragma once
// Curvature of a loss from Hessian-vector products alone: the top eigenvalues by Lanczos
// iteration (with full reorthogonalization) and the trace by Hutchinson's estimator. Both work on
// any symmetric linear operator on flat float64 vectors, so the tests can check them against
// matrices with known spectra; analysis/objective.h supplies the Hessian of the training loss.
// Every random vector comes from a generator keyed by (seed, purpose, index).
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fullbatch/common/tensor_list.h"

namespace fullbatch {

// y = A x for a symmetric A; x and y are 1-D float64 tensors.
using LinearOperator = std::function<torch::Tensor(const torch::Tensor&)>;

// A parameter list as one float64 vector, and back into tensors shaped (and typed) like `like`.
torch::Tensor flatten_to_vector(const TensorList& tensors);
TensorList unflatten_like(const torch::Tensor& vector, const TensorList& like);

struct LanczosOptions {
  int64_t eigenvalues = 1;       // the k largest (algebraic) eigenvalues
  int64_t max_iterations = 20;   // operator applications at most
  double tolerance = 1e-3;       // stop when each Ritz residual <= tolerance * |eigenvalue|
  uint64_t seed = 0;             // start vector
};

struct EigenResult {
  std::vector<double> eigenvalues;  // largest first
  std::vector<double> residuals;    // Ritz residual bound |beta_m s_mi| of each
  int64_t products = 0;             // operator applications
  bool converged = false;           // all residuals within tolerance (or an invariant subspace)
};

EigenResult lanczos_top_eigenvalues(const LinearOperator& op, int64_t dim, const torch::Device& device,
                                    const LanczosOptions& options);

struct TraceResult {
  double trace = 0;
  double std_error = 0;  // of the mean over probes (0 with one probe)
  int64_t products = 0;
};

// tr(A) ~ mean of z^T A z over Rademacher probes z.
TraceResult hutchinson_trace(const LinearOperator& op, int64_t dim, const torch::Device& device,
                             int64_t samples, uint64_t seed);

}  // namespace fullbatch
