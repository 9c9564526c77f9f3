#include "fullbatch/common/tensor_list.h"

#include <torch/torch.h>

#include <cmath>

namespace fullbatch {

TensorList gradients_of(const TensorList& params) {
  TensorList grads;
  grads.reserve(params.size());
  for (const auto& p : params) grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
  return grads;
}

torch::Tensor global_norm(const TensorList& tensors, double norm_type) {
  TORCH_CHECK(!tensors.empty(), "global_norm of no tensors");
  torch::NoGradGuard no_grad;
  if (std::isinf(norm_type)) {
    std::vector<torch::Tensor> maxes;
    for (const auto& t : tensors) maxes.push_back(t.detach().abs().max().to(torch::kFloat64));
    return torch::stack(maxes).max();
  }
  std::vector<torch::Tensor> squares;
  for (const auto& t : tensors) squares.push_back(t.detach().norm().to(torch::kFloat64).pow(2));
  return torch::stack(squares).sum().sqrt();
}

TensorList clone_detached(const TensorList& tensors) {
  TensorList out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach().clone());
  return out;
}

}  // namespace fullbatch
