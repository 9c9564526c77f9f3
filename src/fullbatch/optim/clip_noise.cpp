#include "fullbatch/optim/clip_noise.h"

#include <torch/torch.h>

namespace fullbatch {

torch::Tensor clip_to_norm(TensorList& tensors, double max_norm, double norm_type) {
  torch::NoGradGuard no_grad;
  torch::Tensor norm = global_norm(tensors, norm_type);
  // min(1, max / (norm + 1e-6)) as the reference (and torch's clip_grad_norm_) scales, without a
  // host round-trip.
  torch::Tensor scale = (max_norm / (norm + 1e-6)).clamp_max(1.0);
  for (auto& t : tensors) t.mul_(scale.to(t.scalar_type()));
  return norm;
}

void add_gradient_noise(TensorList& grads, const NoiseSettings& noise, at::Generator& gen) {
  if (!noise.any()) return;
  torch::NoGradGuard no_grad;
  const auto cpu_options = torch::TensorOptions().dtype(torch::kFloat32);
  // The reference's order: additive noise on every tensor, then multiplicative on every tensor.
  if (noise.additive != 0)
    for (auto& g : grads) g.add_((noise.additive * at::randn(g.sizes(), gen, cpu_options)).to(g.options()));
  if (noise.multiplicative != 0)
    for (auto& g : grads)
      g.mul_((1.0 + noise.multiplicative * at::randn(g.sizes(), gen, cpu_options)).to(g.options()));
}

}  // namespace fullbatch
