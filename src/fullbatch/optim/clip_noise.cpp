#include "fullbatch/optim/clip_noise.h"

#include <torch/torch.h>

namespace fullbatch {

torch::Tensor clip_to_norm(TensorList& tensors, double max_norm, double norm_type) {
  torch::NoGradGuard no_grad;
  torch::Tensor norm = global_norm(tensors, norm_type);
  // min(1, max/norm) without a host round-trip; norm 0 gives inf, clamped to 1.
  torch::Tensor scale = (max_norm / norm).clamp_max(1.0);
  for (auto& t : tensors) t.mul_(scale.to(t.scalar_type()));
  return norm;
}

void add_gradient_noise(TensorList& grads, const NoiseSettings& noise, at::Generator& gen) {
  if (!noise.any()) return;
  torch::NoGradGuard no_grad;
  const auto cpu_options = torch::TensorOptions().dtype(torch::kFloat32);
  for (auto& g : grads) {
    if (noise.multiplicative != 0) {
      torch::Tensor z = at::normal(0.0, 1.0, g.sizes(), gen, cpu_options);
      g.mul_((1.0 + noise.multiplicative * z).to(g.options()));
    }
    if (noise.additive != 0) {
      torch::Tensor z = at::normal(0.0, 1.0, g.sizes(), gen, cpu_options);
      g.add_(z.to(g.options()), noise.additive);
    }
  }
}

}  // namespace fullbatch
