#include "fullbatch/optim/clip_noise.h"

#include <torch/torch.h>

#include <cmath>

namespace fullbatch {

TensorList gradients_of(const TensorList& params) {
  TensorList grads;
  grads.reserve(params.size());
  for (const auto& p : params)
    grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
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
  // Each tensor's norm comes from torch's (cascaded) reduction in its own dtype, without a
  // float64 copy of every gradient on this per-block path; the squares are combined in float64.
  std::vector<torch::Tensor> squares;
  for (const auto& t : tensors) squares.push_back(t.detach().norm().to(torch::kFloat64).pow(2));
  return torch::stack(squares).sum().sqrt();
}

torch::Tensor clip_to_norm(TensorList& tensors, double max_norm, double norm_type) {
  torch::NoGradGuard no_grad;
  torch::Tensor norm = global_norm(tensors, norm_type);
  // min(1, max/norm) without a host round-trip; norm 0 gives inf, clamped to 1.
  torch::Tensor scale = (max_norm / norm).clamp_max(1.0);
  for (auto& t : tensors) t.mul_(scale.to(t.scalar_type()));
  return norm;
}

void add_gradient_noise(TensorList& grads, double additive, double multiplicative,
                        at::Generator& gen) {
  if (additive == 0 && multiplicative == 0) return;
  torch::NoGradGuard no_grad;
  for (auto& g : grads) {
    auto cpu_options = torch::TensorOptions().dtype(torch::kFloat32);
    if (multiplicative != 0) {
      torch::Tensor z = at::normal(0.0, 1.0, g.sizes(), gen, cpu_options);
      g.mul_((1.0 + multiplicative * z).to(g.options()));
    }
    if (additive != 0) {
      torch::Tensor z = at::normal(0.0, 1.0, g.sizes(), gen, cpu_options);
      g.add_(z.to(g.options()), additive);
    }
  }
}

}  // namespace fullbatch
