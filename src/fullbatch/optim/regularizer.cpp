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

// d<g, v>/d theta = H v, with g a gradient still in its graph (parameters it does not reach
// contribute nothing).
TensorList hessian_times(const TensorList& g, const TensorList& params, const TensorList& v,
                         bool retain_graph) {
  TensorList outputs, directions, inputs;
  std::vector<size_t> index;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined() || !g[i].requires_grad()) continue;
    outputs.push_back(g[i]);
    directions.push_back(v[i].detach().to(g[i].scalar_type()));
  }
  TensorList hv = torch::autograd::grad(outputs, params, directions, retain_graph,
                                        /*create_graph=*/false, /*allow_unused=*/true);
  return fill_unused(std::move(hv), params);
}

TensorList gradient_at_current(const BlockForward& forward, const TensorList& params) {
  return fill_unused(grad_of(forward().loss, params, false), params);
}

// The direction alpha * g + beta * G, in the gradients' dtype.
TensorList direction(const TensorList& g, const TensorList& prepass_gradient, const GradRegSettings& s) {
  torch::NoGradGuard no_grad;
  TensorList v;
  for (size_t i = 0; i < g.size(); ++i) {
    torch::Tensor vi = g[i] * s.block_strength;
    if (s.acc_strength != 0.0) vi = vi.add(prepass_gradient[i].to(vi.scalar_type()), s.acc_strength);
    v.push_back(vi);
  }
  return v;
}

TensorList detached_or_zero(const TensorList& g, const TensorList& params) {
  TensorList out;
  for (size_t i = 0; i < g.size(); ++i)
    out.push_back(g[i].defined() ? g[i].detach() : torch::zeros_like(params[i]));
  return out;
}

}  // namespace

// H v by differences of gradients along v (forward or central), as the reference computes it.
TensorList hessian_by_differences(const BlockForward& forward, const TensorList& params,
                                  const TensorList& g, const TensorList& v, double eps_n,
                                  GradRegImpl implementation) {
  ParameterSnapshot snapshot(params);
  TensorList vhp;
  if (implementation == GradRegImpl::kCentralDifferences) {
    snapshot.add(v, 0.5 * eps_n);
    TensorList plus = gradient_at_current(forward, params);
    snapshot.add(v, -eps_n);  // from the plus point, as the reference steps
    TensorList minus = gradient_at_current(forward, params);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < g.size(); ++i) vhp.push_back((plus[i] - minus[i]).div_(eps_n));
  } else {
    snapshot.add(v, eps_n);
    TensorList moved = gradient_at_current(forward, params);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < g.size(); ++i) vhp.push_back((moved[i] - g[i]).div_(eps_n));
  }
  snapshot.restore();
  return vhp;
}

// eps / ||v|| as the reference computes it: per-tensor sums of squares, stacked, summed, sqrt, in
// the gradients' dtype, then torch's scalar / tensor (the reciprocal times eps); 0 for v = 0.
double normalized_step(const TensorList& v, double eps) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> squares;
  for (const auto& t : v) squares.push_back(t.pow(2).sum());
  const torch::Tensor norm = torch::stack(squares).sum().sqrt();
  if (norm.item<double>() == 0.0) return 0.0;
  return (torch::reciprocal(norm) * eps).item<double>();
}

BlockGradient block_gradient(const BlockForward& forward, const TensorList& params) {
  ForwardResult out = forward();
  TensorList g = fill_unused(grad_of(out.loss, params, false), params);
  return {std::move(g), out.loss.detach(), out.logits.detach()};
}

TensorList exact_hessian_vector_product(const BlockForward& forward, const TensorList& params,
                                        const TensorList& v) {
  ForwardResult out = forward();
  return hessian_times(grad_of(out.loss, params, /*create_graph=*/true), params, v, false);
}

BlockGradient regularized_block_gradient(const BlockForward& forward, const TensorList& params,
                                         double lr, const GradRegSettings& s,
                                         const TensorList& prepass_gradient) {
  if (!s.on()) return block_gradient(forward, params);
  const double correction = lr / 4.0 * s.term_scale;

  if (s.implementation == GradRegImpl::kDoubleBackprop) {
    // One pass gives g and, through its graph, H g and H G (the reference's "autograd").
    ForwardResult out = forward();
    TensorList g = grad_of(out.loss, params, /*create_graph=*/true);
    const bool both = s.acc_strength != 0.0;
    TensorList result = detached_or_zero(g, params);
    TensorList hg = hessian_times(g, params, result, /*retain_graph=*/both);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < result.size(); ++i) result[i] = result[i].add(hg[i], correction * s.block_strength);
    if (both) {
      torch::AutoGradMode enable(true);
      TensorList hG = hessian_times(g, params, prepass_gradient, false);
      torch::NoGradGuard inner;
      for (size_t i = 0; i < result.size(); ++i) result[i] = result[i].add(hG[i], correction * s.acc_strength);
    }
    return {std::move(result), out.loss.detach(), out.logits.detach()};
  }

  BlockGradient base = block_gradient(forward, params);
  const TensorList v = direction(base.grads, prepass_gradient, s);
  const double eps_n = normalized_step(v, s.eps);
  // A zero direction has no curvature to probe (the reference would divide by zero).
  if (eps_n == 0.0) return base;
  torch::AutoGradMode enable_grad(true);
  const TensorList vhp = hessian_by_differences(forward, params, base.grads, v, eps_n, s.implementation);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < base.grads.size(); ++i) base.grads[i] = base.grads[i].add(vhp[i], correction);
  return base;
}

}  // namespace fullbatch
