#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace fullbatch {

using TensorList = std::vector<torch::Tensor>;

// One forward pass of a block in training mode: its loss and logits.
struct ForwardResult {
  torch::Tensor loss;
  torch::Tensor logits;
};
using BlockForward = std::function<ForwardResult()>;

struct GradRegSettings {
  double strength = 0.0;  // alpha (hyp.grad_reg.block_strength)
  double eps = 1e-2;
  std::string implementation = "forward-differences";  // | central-differences | double-backprop
};

struct BlockGradient {
  TensorList grads;  // gradient w.r.t. params, regularizer term included
  torch::Tensor loss;    // of the unperturbed pass
  torch::Tensor logits;  // of the unperturbed pass
};

// The plain gradient of one block (no regularizer).
BlockGradient block_gradient(const BlockForward& forward, const TensorList& params);

// The block's gradient with the paper's gradient-norm penalty:
//   R = (lr/4) * alpha * ||g||^2 is approximated, as in the reference implementation, by
//   g + (lr/4) * (grad L(theta + eps_n v) - g) / eps_n  with  v = alpha g, eps_n = eps / ||v||,
// i.e. g + (lr/4) * alpha * H g. Central differences use (g(+) - g(-)) / (2 eps_n); double
// backprop computes H v exactly and is the oracle of the tests. The perturbed passes run in
// training mode (they update BatchNorm statistics, as the paper's runs did); the parameters are
// restored bit for bit from a copy, never by subtracting the perturbation.
BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& settings);

// Hessian-vector product H v of the loss at the current parameters by double backprop.
TensorList exact_hessian_vector_product(const BlockForward& forward, const TensorList& params,
                                        const TensorList& v);

}  // namespace fullbatch
