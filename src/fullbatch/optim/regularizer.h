#pragma once
// The paper's gradient-norm penalty, in every form, in one place.
//
// The regularized loss is L(theta) + (lr / 4) * alpha * ||grad L(theta)||^2, whose gradient is
//   g + (lr / 4) * alpha * H g          (g the gradient, H the Hessian).
// H g is the Hessian-vector product along v = alpha g, obtained by the implementation asked for:
//   forward differences   (g(theta + eps_n v) - g(theta)) / eps_n
//   central differences   (g(theta + eps_n v) - g(theta - eps_n v)) / (2 eps_n)
//   double backprop       exact: the gradient of <g, v> (the tests' oracle)
// with eps_n = eps / ||v||. The penalty applies to three things, all through the functions below:
//   a block, or a sub-block of it (hyp.grad_reg.block_strength, hyp.sub_batch):
//       regularized_block_gradient, g from one forward pass of the block;
//   the full gradient (hyp.grad_reg.acc_strength): regularize_full_gradient, where "the gradient
//       at theta" is a whole pass over the step's blocks and H is the Hessian of the full loss.
// Perturbed passes run in training mode (they move BatchNorm statistics, as the paper's runs
// did); the parameters are restored bit for bit from a copy (common/param_snapshot.h).
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
  double strength = 0.0;  // alpha (block_strength) or beta (acc_strength)
  double eps = 1e-2;
  GradRegImpl implementation = GradRegImpl::kForwardDifferences;
};

struct BlockGradient {
  TensorList grads;      // gradient w.r.t. params, penalty term included
  torch::Tensor loss;    // of the unperturbed pass
  torch::Tensor logits;  // of the unperturbed pass
};

// The plain gradient of one block.
BlockGradient block_gradient(const BlockForward& forward, const TensorList& params);

// The block's gradient with the penalty (the plain gradient when strength or lr is 0).
BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& settings);

// The gradient of the full loss at the current parameters (a pass over every block of the step).
using FullGradient = std::function<TensorList()>;
// H v for the Hessian of the full loss at the current parameters, exactly.
using FullHessianVector = std::function<TensorList(const TensorList& v)>;

// The penalty on the full gradient G: G += (lr / 4) * beta * H G, H by the implementation asked
// for (`gradient` for differences, `hessian_vector` for double backprop). No-op when the
// strength, lr or G is 0.
void regularize_full_gradient(TensorList& full_gradient, const FullGradient& gradient,
                              const FullHessianVector& hessian_vector, const TensorList& params,
                              double lr, const GradRegSettings& settings);

// Hessian-vector product H v of one pass's loss at the current parameters, by double backprop.
TensorList exact_hessian_vector_product(const BlockForward& forward, const TensorList& params,
                                        const TensorList& v);

}  // namespace fullbatch
