#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/regularizer.h"

namespace fullbatch {
namespace {

// A small smooth network (no BatchNorm, tanh) so finite differences have a clean oracle.
struct SmoothNet : torch::nn::Module {
  SmoothNet() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    fc = register_module("fc", torch::nn::Linear(4 * 4 * 4, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return fc->forward(torch::tanh(conv->forward(x)).flatten(1));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
};

struct Problem {
  std::shared_ptr<SmoothNet> net;
  TensorList params;
  torch::Tensor x, y;
  BlockForward forward;
};

Problem make_problem(torch::ScalarType dtype) {
  torch::manual_seed(0);
  Problem p;
  p.net = std::make_shared<SmoothNet>();
  p.net->to(dtype);
  p.params = p.net->parameters();
  p.x = torch::randn({8, 1, 6, 6}, dtype);
  p.y = torch::randint(0, 3, {8}, torch::kInt64);
  auto net = p.net;
  auto x = p.x, y = p.y;
  p.forward = [net, x, y] {
    torch::Tensor logits = net->forward(x);
    return ForwardResult{torch::nn::functional::cross_entropy(logits, y), logits};
  };
  return p;
}

double relative_error(const TensorList& a, const TensorList& b) {
  TensorList diff;
  for (size_t i = 0; i < a.size(); ++i) diff.push_back(a[i] - b[i]);
  return global_norm(diff).item<double>() / global_norm(b).item<double>();
}

// The regularizer's term (result - plain gradient) against (lr/4) * alpha * H g by double backprop.
TensorList term(const BlockGradient& reg, const BlockGradient& plain) {
  TensorList t;
  for (size_t i = 0; i < reg.grads.size(); ++i) t.push_back(reg.grads[i] - plain.grads[i]);
  return t;
}

TEST(Regularizer, FiniteDifferencesMatchExactHessianVectorProduct) {
  Problem p = make_problem(torch::kFloat64);
  const double lr = 0.8, alpha = 0.5;
  BlockGradient plain = block_gradient(p.forward, p.params);
  BlockGradient exact =
      regularized_block_gradient(p.forward, p.params, lr, {alpha, 0.0, 1e-2, GradRegImpl::kDoubleBackprop});
  // Independent oracle: H (alpha g) from exact_hessian_vector_product.
  TensorList v;
  for (auto& g : plain.grads) v.push_back(alpha * g);
  TensorList hv = exact_hessian_vector_product(p.forward, p.params, v);
  TensorList expected_term;
  for (auto& h : hv) expected_term.push_back(lr / 4 * h);
  EXPECT_LT(relative_error(term(exact, plain), expected_term), 1e-12);
  ASSERT_GT(global_norm(expected_term).item<double>(), 1e-6);

  for (double eps : {1e-1, 1e-2, 1e-3, 1e-4}) {
    BlockGradient fwd =
        regularized_block_gradient(p.forward, p.params, lr, {alpha, 0.0, eps, GradRegImpl::kForwardDifferences});
    BlockGradient central =
        regularized_block_gradient(p.forward, p.params, lr, {alpha, 0.0, eps, GradRegImpl::kCentralDifferences});
    double e_fwd = relative_error(term(fwd, plain), expected_term);
    double e_central = relative_error(term(central, plain), expected_term);
    EXPECT_LT(e_fwd, std::max(10 * eps, 1e-6)) << "eps " << eps;
    EXPECT_LT(e_central, std::max(eps * eps, 1e-8)) << "eps " << eps;
    if (eps >= 1e-2) EXPECT_LT(e_central, e_fwd) << "central differences should be tighter";
  }
}

TEST(Regularizer, Float32ForwardDifferencesAreCloseAtThePaperEps) {
  Problem p = make_problem(torch::kFloat32);
  BlockGradient plain = block_gradient(p.forward, p.params);
  BlockGradient exact =
      regularized_block_gradient(p.forward, p.params, 0.8, {0.5, 0.0, 1e-2, GradRegImpl::kDoubleBackprop});
  BlockGradient fwd =
      regularized_block_gradient(p.forward, p.params, 0.8, {0.5, 0.0, 1e-2, GradRegImpl::kForwardDifferences});
  EXPECT_LT(relative_error(term(fwd, plain), term(exact, plain)), 0.05);
}

TEST(Regularizer, ParametersAreRestoredBitForBit) {
  Problem p = make_problem(torch::kFloat32);
  TensorList before;
  for (auto& q : p.params) before.push_back(q.detach().clone());
  for (GradRegImpl impl : {GradRegImpl::kForwardDifferences, GradRegImpl::kCentralDifferences}) {
    regularized_block_gradient(p.forward, p.params, 0.8, {0.5, 0.0, 1e-2, impl});
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_TRUE(torch::equal(before[i], p.params[i])) << to_string(impl) << " param " << i;
  }
}

TEST(Regularizer, ZeroStrengthOrZeroLrIsThePlainGradient) {
  // At lr 0 the perturbed pass still runs (it moves BatchNorm statistics, as the reference's
  // does), but its term is added with weight 0.
  Problem p = make_problem(torch::kFloat64);
  BlockGradient plain = block_gradient(p.forward, p.params);
  for (auto [lr, alpha] : {std::pair{0.8, 0.0}, std::pair{0.0, 0.5}}) {
    BlockGradient g = regularized_block_gradient(p.forward, p.params, lr, {alpha, 0.0, 1e-2, GradRegImpl::kForwardDifferences});
    for (size_t i = 0; i < g.grads.size(); ++i) EXPECT_TRUE(torch::equal(g.grads[i], plain.grads[i]));
  }
}

// With a full-gradient direction (acc_strength) every implementation estimates
// g + (lr/4) H (alpha g + beta G); double backprop is exact, the differences converge to it.
TEST(Regularizer, FullGradientDirectionMatchesExactHessianVectorProduct) {
  Problem p = make_problem(torch::kFloat64);
  const double lr = 0.8, alpha = 0.5, beta = 2.0;
  BlockGradient plain = block_gradient(p.forward, p.params);
  TensorList full;  // any fixed direction stands in for the pre-pass gradient G
  for (auto& g : plain.grads) full.push_back(torch::randn_like(g));
  TensorList v;
  for (size_t i = 0; i < full.size(); ++i) v.push_back(alpha * plain.grads[i] + beta * full[i]);
  TensorList expected_term;
  for (auto& h : exact_hessian_vector_product(p.forward, p.params, v)) expected_term.push_back(lr / 4 * h);
  auto run = [&](GradRegImpl impl, double eps) {
    return term(regularized_block_gradient(p.forward, p.params, lr, {alpha, beta, eps, impl}, full), plain);
  };
  EXPECT_LT(relative_error(run(GradRegImpl::kDoubleBackprop, 1e-2), expected_term), 1e-12);
  EXPECT_LT(relative_error(run(GradRegImpl::kCentralDifferences, 1e-3), expected_term), 1e-6);
  EXPECT_LT(relative_error(run(GradRegImpl::kForwardDifferences, 1e-4), expected_term), 1e-3);
}

// Central differences evaluate at theta +- eps_n v / 2 and divide by eps_n (the reference's
// points): on a loss whose gradient is cubic in theta the error is (eps_n / 2)^2 / 6 * ||v||^2
// times the third derivative, a quarter of what +- eps_n v would give.
TEST(Regularizer, CentralDifferencesUseHalfStepsAsTheReference) {
  torch::Tensor w = torch::tensor({1.0}, torch::kFloat64).requires_grad_();
  // L = w^4 / 12: g = w^3 / 3, H = w^2, and ((w + h)^3 - (w - h)^3) / (3 * 2h) = w^2 + h^2 / 3.
  auto forward = [w] { return ForwardResult{w.pow(4).sum() / 12.0, w}; };
  const double lr = 4.0, eps = 0.1;  // lr/4 = 1; v = alpha g = 1/3, ||v|| = 1/3, eps_n = 0.3
  BlockGradient g = regularized_block_gradient(forward, {w}, lr, {1.0, 0.0, eps, GradRegImpl::kCentralDifferences});
  const double v = 1.0 / 3.0, eps_n = eps / v, h = eps_n * v / 2;  // h = eps / 2
  const double expected = 1.0 / 3.0 + v * (1.0 + h * h / 3.0);
  EXPECT_NEAR(g.grads[0].item<double>(), expected, 1e-12);
}

}  // namespace
}  // namespace fullbatch
