#pragma once
// The paper's gradient-norm penalty, in every form, in one place.
//
// For a chunk of a block (hyp.sub_batch) with gradient g, the reference implementation adds
//   (lr / 4) * H v,   v = alpha * g + beta * G
// where H is the chunk's Hessian, alpha = hyp.grad_reg.block_strength, and G the full gradient
// of a plain pre-pass over the step's blocks, beta = hyp.grad_reg.acc_strength. H v comes from
// the implementation asked for, with eps_n = eps / ||v||:
//   forward differences   (g(theta + eps_n v) - g(theta)) / eps_n
//   central differences   (g(theta + eps_n v / 2) - g(theta - eps_n v / 2)) / eps_n
//   double backprop       exact: the gradient of <g, v> (the tests' oracle)
// Operation for operation as the reference: the perturbation is one fused add with alpha eps_n,
// the difference is divided by eps_n, and the term is added with alpha lr / 4; the minus point
// of central differences is reached from the plus point. The perturbed passes run in training
// mode (they move BatchNorm statistics) even at lr 0, as the reference's do; the parameters are
// restored bit for bit from a copy (common/param_snapshot.h).
#include <torch/types.h>

#include <functional>

#include "fullbatch/common/tensor_list.h"
#include "fullbatch/config/enums.h"

namespace fullbatch {

// One forward pass in training mode: its loss and logits.
struct ForwardResult {
  torch::Tensor loss;
  torch::Tensor logits;
};
using BlockForward = std::function<ForwardResult()>;

struct GradRegSettings {
  double block_strength = 0.0;  // alpha
  double acc_strength = 0.0;    // beta (hyp.grad_reg.acc_strength), along the pre-pass gradient G
  double eps = 1e-2;
  GradRegImpl implementation = GradRegImpl::kForwardDifferences;
  // The penalty term is added with weight term_scale * lr / 4: N when only one block in N is
  // penalized (hyp.grad_reg.every_nth_block), so the term's expectation over steps is unchanged.
  double term_scale = 1.0;

  bool on() const { return block_strength != 0.0 || acc_strength != 0.0; }
};

struct BlockGradient {
  TensorList grads;      // gradient w.r.t. params, penalty term included
  torch::Tensor loss;    // of the unperturbed pass
  torch::Tensor logits;  // of the unperturbed pass
};

// The plain gradient of one pass.
BlockGradient block_gradient(const BlockForward& forward, const TensorList& params);

// The chunk's gradient with the penalty (the plain gradient when the penalty is off).
// `prepass_gradient` is G, needed only when acc_strength is not 0.
BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& settings,
                                         const TensorList& prepass_gradient = {});

// The regularizer's finite-difference recipe on its own, for the analysis of its error
// (analysis/probes.h): H v of one pass's loss from gradient differences along v, forward or
// central as `implementation` says, at the step eps_n, with `g` the gradient at the current
// parameters (forward differences reuse it). The parameters are restored bit for bit.
TensorList hessian_by_differences(const BlockForward& forward, const TensorList& params,
                                  const TensorList& g, const TensorList& v, double eps_n,
                                  GradRegImpl implementation);
// eps / ||v|| computed as the reference does (0 for v = 0).
double normalized_step(const TensorList& v, double eps);

// Hessian-vector product H v of one pass's loss at the current parameters, by double backprop.
TensorList exact_hessian_vector_product(const BlockForward& forward, const TensorList& params,
                                        const TensorList& v);

}  // namespace fullbatch
