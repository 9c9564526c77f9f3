#include "fullbatch/optim/regularizer.h"

#include <torch/torch.h>

#include "fullbatch/optim/clip_noise.h"

namespace fullbatch {
namespace {

TensorList grad_of(const torch::Tensor& loss, const TensorList& params, bool create_graph) {
  return torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/create_graph,
                               create_graph, /*allow_unused=*/true);
}

TensorList fill_unused(TensorList grads, const TensorList& params) {
  for (size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = torch::zeros_like(params[i]);
  return grads;
}

// The gradient at theta + scale * v, parameters restored exactly afterwards.
TensorList gradient_at_offset(const BlockForward& forward, const TensorList& params,
                              const TensorList& v, const torch::Tensor& scale) {
  TensorList saved;
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      saved.push_back(params[i].detach().clone());
      params[i].detach().add_(v[i] * scale.to(v[i].scalar_type()));
    }
  }
  TensorList g = fill_unused(grad_of(forward().loss, params, false), params);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(saved[i]);
  }
  return g;
}

}  // namespace

BlockGradient block_gradient(const BlockForward& forward, const TensorList& params) {
  ForwardResult out = forward();
  TensorList g = fill_unused(grad_of(out.loss, params, false), params);
  return {std::move(g), out.loss.detach(), out.logits.detach()};
}

TensorList exact_hessian_vector_product(const BlockForward& forward, const TensorList& params,
                                        const TensorList& v) {
  ForwardResult out = forward();
  TensorList g = grad_of(out.loss, params, /*create_graph=*/true);
  torch::Tensor dot = torch::zeros({}, params[0].options());
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined()) dot = dot + (g[i] * v[i].detach()).sum();
  return fill_unused(grad_of(dot, params, false), params);
}

BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& s) {
  if (s.strength == 0.0 || lr == 0.0) return block_gradient(forward, params);
  const double factor = lr / 4.0;

  if (s.implementation == "double-backprop") {
    ForwardResult out = forward();
    TensorList g = grad_of(out.loss, params, /*create_graph=*/true);
    torch::Tensor dot = torch::zeros({}, params[0].options());
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i].defined()) dot = dot + (g[i] * (s.strength * g[i].detach())).sum();
    TensorList hv = fill_unused(grad_of(dot, params, false), params);
    TensorList result;
    for (size_t i = 0; i < params.size(); ++i)
      result.push_back(g[i].defined() ? (g[i].detach() + factor * hv[i]) : factor * hv[i]);
    return {std::move(result), out.loss.detach(), out.logits.detach()};
  }

  BlockGradient base = block_gradient(forward, params);
  torch::NoGradGuard no_grad;
  TensorList v;
  for (const auto& g : base.grads) v.push_back(g * s.strength);
  torch::Tensor v_norm = global_norm(v).to(params[0].scalar_type());
  // A zero gradient has no curvature direction to probe; eps_n would be inf.
  torch::Tensor eps_n = torch::where(v_norm > 0, s.eps / v_norm, torch::zeros_like(v_norm));
  torch::Tensor inv = torch::where(eps_n > 0, factor / eps_n, torch::zeros_like(eps_n));

  torch::AutoGradMode enable_grad(true);
  TensorList plus = gradient_at_offset(forward, params, v, eps_n);
  if (s.implementation == "central-differences") {
    TensorList minus = gradient_at_offset(forward, params, v, -eps_n);
    torch::NoGradGuard inner;
    for (size_t i = 0; i < params.size(); ++i)
      base.grads[i] = base.grads[i] + (plus[i] - minus[i]) * (0.5 * inv);
  } else {
    torch::NoGradGuard inner;
    for (size_t i = 0; i < params.size(); ++i)
      base.grads[i] = base.grads[i] + (plus[i] - base.grads[i]) * inv;
  }
  return base;
}

}  // namespace fullbatch
