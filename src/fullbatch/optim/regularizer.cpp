#include "fullbatch/optim/regularizer.h"

#include <torch/torch.h>

#include "fullbatch/common/param_snapshot.h"

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

// <g, v> over all tensors, kept in the graph of g.
torch::Tensor dot_with(const TensorList& g, const TensorList& v, const torch::TensorOptions& options) {
  torch::Tensor dot = torch::zeros({}, options);
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined()) dot = dot + (g[i] * v[i].detach()).sum();
  return dot;
}

// The gradient at theta + scale * v, parameters restored exactly afterwards.
TensorList gradient_at_offset(const std::function<TensorList()>& gradient, const TensorList& params,
                              const TensorList& v, const torch::Tensor& scale) {
  ParameterSnapshot snapshot(params);
  snapshot.perturb(v, scale);
  TensorList g = gradient();
  snapshot.restore();
  return g;
}

// g += (lr / 4) * H v with H v by differences of `gradient` along v: the one finite-difference
// recipe of every form of the penalty. g is the gradient at the current parameters.
void add_penalty_by_differences(TensorList& g, const std::function<TensorList()>& gradient,
                                const TensorList& params, const TensorList& v, double lr,
                                const GradRegSettings& s) {
  torch::Tensor v_norm;
  torch::Tensor eps_n;
  torch::Tensor inv;
  {
    torch::NoGradGuard no_grad;
    v_norm = global_norm(v).to(params[0].scalar_type());
    // A zero direction has no curvature to probe; eps_n would be inf.
    eps_n = torch::where(v_norm > 0, s.eps / v_norm, torch::zeros_like(v_norm));
    inv = torch::where(eps_n > 0, (lr / 4.0) / eps_n, torch::zeros_like(eps_n));
  }
  torch::AutoGradMode enable_grad(true);
  TensorList plus = gradient_at_offset(gradient, params, v, eps_n);
  if (s.implementation == GradRegImpl::kCentralDifferences) {
    TensorList minus = gradient_at_offset(gradient, params, v, -eps_n);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] + (plus[i] - minus[i]) * (0.5 * inv);
  } else {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] + (plus[i] - g[i]) * inv;
  }
}

TensorList scaled(const TensorList& tensors, double factor) {
  torch::NoGradGuard no_grad;
  TensorList out;
  for (const auto& t : tensors) out.push_back(t * factor);
  return out;
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
  return fill_unused(grad_of(dot_with(g, v, params[0].options()), params, false), params);
}

BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& s) {
  if (s.strength == 0.0 || lr == 0.0) return block_gradient(forward, params);
  const double factor = lr / 4.0;

  if (s.implementation == GradRegImpl::kDoubleBackprop) {
    // One pass gives both g and H (alpha g): v depends on g, so it must be this pass's g.
    ForwardResult out = forward();
    TensorList g = grad_of(out.loss, params, /*create_graph=*/true);
    TensorList v;
    for (const auto& gi : g) v.push_back(gi.defined() ? s.strength * gi.detach() : gi);
    TensorList hv = fill_unused(grad_of(dot_with(g, v, params[0].options()), params, false), params);
    TensorList result;
    for (size_t i = 0; i < params.size(); ++i)
      result.push_back(g[i].defined() ? (g[i].detach() + factor * hv[i]) : factor * hv[i]);
    return {std::move(result), out.loss.detach(), out.logits.detach()};
  }

  BlockGradient base = block_gradient(forward, params);
  const TensorList v = scaled(base.grads, s.strength);
  auto gradient = [&] { return fill_unused(grad_of(forward().loss, params, false), params); };
  add_penalty_by_differences(base.grads, gradient, params, v, lr, s);
  return base;
}

void regularize_full_gradient(TensorList& full_gradient, const FullGradient& gradient,
                              const FullHessianVector& hessian_vector, const TensorList& params,
                              double lr, const GradRegSettings& s) {
  if (s.strength == 0.0 || lr == 0.0) return;
  const TensorList v = scaled(full_gradient, s.strength);
  if (global_norm(v).item<double>() == 0.0) return;
  if (s.implementation == GradRegImpl::kDoubleBackprop) {
    const TensorList hv = hessian_vector(v);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < full_gradient.size(); ++i)
      full_gradient[i] = full_gradient[i] + (lr / 4.0) * hv[i].to(full_gradient[i].scalar_type());
    return;
  }
  add_penalty_by_differences(full_gradient, gradient, params, v, lr, s);
}

}  // namespace fullbatch
