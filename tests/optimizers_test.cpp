// The optimizers behind optim/optimizer.h: each against libtorch's own where it has one (AdamW,
// L-BFGS's minimizer), else against its formula written out by hand; resume is bit-exact for
// every optimizer and modification; bad values are UserErrors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/config/config.h"
#include "fullbatch/optim/adamw.h"
#include "fullbatch/optim/agc.h"
#include "fullbatch/optim/fista.h"
#include "fullbatch/optim/lbfgs.h"
#include "fullbatch/optim/optimizer.h"
#include "fullbatch/optim/sgd.h"

namespace fullbatch {
namespace {

torch::Tensor leaf(std::vector<double> values) {
  return torch::tensor(values, torch::kFloat64).requires_grad_();
}

// A smooth loss over a conv-shaped weight and a vector, its gradient by autograd: the closure the
// trainer would pass, over a problem small enough to run every optimizer.
struct Problem {
  std::vector<torch::Tensor> params;
  int calls = 0;

  Problem() {
    params = {torch::linspace(-1.0, 1.0, 24, torch::kFloat64)
                  .reshape({2, 3, 2, 2})
                  .clone()
                  .requires_grad_(),
              leaf({0.5, -0.3, 0.8, 0.1})};
  }

  double evaluate() {
    ++calls;
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    torch::Tensor loss = torch::scalar_tensor(0.0, torch::kFloat64);
    for (size_t i = 0; i < params.size(); ++i)
      loss = loss + (0.5 * static_cast<double>(i + 1) * params[i].square() +
                     0.1 * torch::cos(3 * params[i]))
                        .sum();
    loss = loss + 0.05 * (params[0].sum() * params[1].sum()).square();
    loss.backward();
    return loss.item<double>();
  }

  GradientClosure closure() {
    return [this] { return evaluate(); };
  }
};

const std::vector<std::string> kNames = {"layer1.0.conv1.weight", "linear.bias"};

OptimizerSettings settings(const std::string& name, const std::string& modification = "none") {
  OptimizerSettings s = reference_optimizer_settings(name);
  s.modification.name = modification;
  return s;
}

// The quadratic 0.5 sum_i h_i w_i^2, its gradient h * w into .grad().
GradientClosure quadratic_closure(std::vector<torch::Tensor> params, std::vector<torch::Tensor> h,
                                  int* calls = nullptr) {
  return [params, h, calls] {
    if (calls) ++*calls;
    double loss = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor w = params[i].detach();
      params[i].mutable_grad() = h[i] * w;
      loss += 0.5 * (h[i] * w * w).sum().item<double>();
    }
    return loss;
  };
}

// ---- Gradient Descent ----

TEST(Sgd, DampeningMatchesTorchOptimSgd) {
  torch::Tensor a = torch::linspace(-1.0, 2.0, 6, torch::kFloat64).requires_grad_();
  torch::Tensor b = a.detach().clone().requires_grad_();
  Sgd ours({a}, {0.9, 1e-3, false, 0.25});
  torch::optim::SGD theirs(
      {b}, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3).dampening(0.25));
  for (int s = 0; s < 6; ++s) {
    torch::Tensor g = torch::sin(a.detach() * (s + 1));
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    ours.step(0.1, nullptr);
    theirs.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 0, 1e-14));
}

TEST(Sgd, NesterovWithDampeningIsAUserError) {
  torch::Tensor a = leaf({1.0});
  EXPECT_THROW(Sgd({a}, {0.9, 0, true, 0.1}), UserError);
}

// The momentum bound is the key's, [0, 1], checked once where the user sets it; Sgd only asserts
// it (a momentum outside reaching Sgd is a caller's bug, not the user's input). It used to accept
// 1.5 and call -0.1 a user error.
TEST(Sgd, MomentumOutsideTheKeysBoundIsACallersBug) {
  torch::Tensor a = leaf({1.0});
  EXPECT_THROW(Sgd({a}, {1.5, 0, false, 0}), std::invalid_argument);
  EXPECT_THROW(Sgd({a}, {-0.1, 0, false, 0}), std::invalid_argument);
  EXPECT_NO_THROW(Sgd({a}, {0.0, 0, false, 0}));
  EXPECT_NO_THROW(Sgd({a}, {1.0, 0, false, 0}));
  Config c;
  for (const char* bad : {"1.5", "-0.1"})
    EXPECT_THROW(set_key(c, "hyp.optim.momentum", bad), UserError) << bad;
  set_key(c, "hyp.optim.momentum", "1");
  EXPECT_EQ(c.hyp.optim.momentum, 1.0);
}

// ---- Adam (AdamW) ----

TEST(AdamW, MatchesTorchOptimAdamWWithAndWithoutAmsgrad) {
  std::vector<torch::Tensor> finals;
  for (bool amsgrad : {false, true}) {
    torch::Tensor a =
        torch::linspace(-1.0, 1.0, 12, torch::kFloat64).reshape({3, 4}).clone().requires_grad_();
    torch::Tensor b = a.detach().clone().requires_grad_();
    AdamW ours({a}, AdamWOptions{{0.9, 0.99}, 1e-8, 0.01, amsgrad});
    torch::optim::AdamW theirs({b}, torch::optim::AdamWOptions(0.01)
                                        .betas(std::make_tuple(0.9, 0.99))
                                        .eps(1e-8)
                                        .weight_decay(0.01)
                                        .amsgrad(amsgrad));
    for (int s = 0; s < 20; ++s) {
      // Large gradients first, then small ones, so AMSGrad's maximum differs from the average.
      torch::Tensor g = (s < 5 ? 3.0 : 0.1) * torch::sin(a.detach() * (s + 1)) + 0.01 * s;
      a.mutable_grad() = g.clone();
      b.mutable_grad() = g.clone();
      ours.step(0.01, nullptr);
      theirs.step();
    }
    EXPECT_TRUE(torch::allclose(a, b, 0, 1e-6)) << "amsgrad=" << amsgrad;
    EXPECT_TRUE(torch::allclose(a, b, 0, 1e-13))
        << "amsgrad=" << amsgrad;  // in fact the same operations
    finals.push_back(a.detach().clone());
  }
  EXPECT_FALSE(torch::allclose(finals[0], finals[1], 0, 1e-6));  // AMSGrad mattered
}

TEST(AdamW, StateHasTheNamedEntries) {
  torch::Tensor a = leaf({1.0, 2.0});
  AdamW opt({a}, AdamWOptions{{0.9, 0.999}, 1e-8, 0.01, true});
  EXPECT_TRUE(opt.state_dict().empty());
  a.mutable_grad() = torch::ones({2}, torch::kFloat64);
  opt.step(0.1, nullptr);
  OptimizerState s = opt.state_dict();
  for (const char* key :
       {"adam.step.0", "adam.exp_avg.0", "adam.exp_avg_sq.0", "adam.max_exp_avg_sq.0"})
    EXPECT_EQ(s.count(key), 1u) << key;
  EXPECT_EQ(s.at("adam.step.0").dim(), 0);
  EXPECT_EQ(s.at("adam.step.0").item<int64_t>(), 1);
}

// ---- L-BFGS ----

torch::Tensor quadratic_loss(const torch::Tensor& w) {
  torch::Tensor A = torch::tensor({3.0, 0.5, 0.0, 0.5, 2.0, 0.25, 0.0, 0.25, 1.0}, torch::kFloat64)
                        .reshape({3, 3});
  torch::Tensor b = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  return 0.5 * w.dot(A.mv(w)) - b.dot(w);
}

torch::Tensor logistic_loss(const torch::Tensor& w) {
  torch::Tensor X = torch::tensor({1.0, 2.0, -1.0, -0.5, 1.0, 0.3, 2.0, -1.0, 0.7, 0.1, 0.4, -2.0,
                                   -1.5, -0.2, 1.0, 0.3, 0.9, 0.4},
                                  torch::kFloat64)
                        .reshape({6, 3});
  torch::Tensor y = torch::tensor({1.0, -1.0, 1.0, -1.0, 1.0, -1.0}, torch::kFloat64);
  return torch::nn::functional::softplus(-y * X.mv(w)).mean() + 0.05 * w.dot(w);
}

TEST(Lbfgs, ReachesTheMinimizerOfTorchsLbfgs) {
  using Loss = torch::Tensor (*)(const torch::Tensor&);
  for (Loss f : {quadratic_loss, logistic_loss}) {
    torch::Tensor w = torch::zeros({3}, torch::kFloat64).requires_grad_();
    Lbfgs ours({w}, LbfgsOptions{});
    EXPECT_TRUE(ours.needs_closure());
    GradientClosure closure = [&] {
      w.mutable_grad() = torch::Tensor();
      torch::Tensor loss = f(w);
      loss.backward();
      return loss.item<double>();
    };
    closure();
    // Stop before the gradient is exactly 0: the reference's update divides by y.y.
    for (int s = 0; s < 50 && w.grad().norm().item<double>() > 1e-10; ++s) {
      ours.step(1.0, closure);
      closure();
    }
    EXPECT_LT(w.grad().norm().item<double>(), 1e-8);

    torch::Tensor v = torch::zeros({3}, torch::kFloat64).requires_grad_();
    torch::optim::LBFGS theirs({v}, torch::optim::LBFGSOptions(1)
                                        .max_iter(200)
                                        .tolerance_grad(1e-12)
                                        .tolerance_change(1e-14)
                                        .history_size(10)
                                        .line_search_fn(std::string("strong_wolfe")));
    theirs.step([&] {
      theirs.zero_grad();
      torch::Tensor loss = f(v);
      loss.backward();
      return loss;
    });
    EXPECT_TRUE(torch::allclose(w.detach(), v.detach(), 0, 1e-6)) << w << v;
  }
}

// Without a line search: two steps written out, the second through one curvature pair. The pair's
// s is t d without lr, as the reference's; lr scales only the step taken.
TEST(Lbfgs, NoLineSearchTwoStepsByHand) {
  const double h[2] = {1.0, 3.0}, lr = 0.1;
  torch::Tensor w = leaf({1.0, -2.0});
  LbfgsOptions o;
  o.line_search = LineSearch::kNone;
  Lbfgs opt({w}, o);
  EXPECT_FALSE(opt.needs_closure());
  int calls = 0;
  GradientClosure closure =
      quadratic_closure({w}, {torch::tensor({h[0], h[1]}, torch::kFloat64)}, &calls);

  double p0[2] = {1.0, -2.0}, g0[2], p1[2], g1[2];
  for (int i = 0; i < 2; ++i) g0[i] = h[i] * p0[i];
  for (int i = 0; i < 2; ++i) p1[i] = p0[i] - lr * g0[i];  // H0 = 1, no pairs: d = -g
  closure();
  opt.step(lr, closure);
  EXPECT_NEAR(w[0].item<double>(), p1[0], 1e-15);
  EXPECT_NEAR(w[1].item<double>(), p1[1], 1e-15);

  for (int i = 0; i < 2; ++i) g1[i] = h[i] * p1[i];
  double s[2], y[2], ys = 0, yy = 0, sBs = 0;
  for (int i = 0; i < 2; ++i) {
    s[i] = -g0[i];  // t = 1
    y[i] = g1[i] - g0[i];
    ys += y[i] * s[i];
    yy += y[i] * y[i];
    sBs += s[i] * (-g0[i]);  // Bs = -t g0
  }
  ASSERT_GT(ys, 1e-2 * sBs);  // accepted without damping
  const double H = ys / yy, rho = 1 / ys;
  double q[2] = {-g1[0], -g1[1]};
  const double alpha = rho * (s[0] * q[0] + s[1] * q[1]);
  for (int i = 0; i < 2; ++i) q[i] -= alpha * y[i];
  double r[2] = {H * q[0], H * q[1]};
  const double beta = rho * (y[0] * r[0] + y[1] * r[1]);
  for (int i = 0; i < 2; ++i) r[i] += (alpha - beta) * s[i];
  closure();
  opt.step(lr, closure);
  EXPECT_NEAR(w[0].item<double>(), p1[0] + lr * r[0], 1e-14);
  EXPECT_NEAR(w[1].item<double>(), p1[1] + lr * r[1], 1e-14);
  EXPECT_EQ(calls, 2);  // only the trainer's own evaluations
}

TEST(Lbfgs, QuadraticInterpolationFindsTheVertex) {
  // (x - 0.3)^2 from x = 0 and from x = 0.2, through x = 1.
  EXPECT_NEAR(quadratic_interpolation(0.0, 0.09, -0.6, 1.0, 0.49), 0.3, 1e-15);
  EXPECT_NEAR(quadratic_interpolation(0.2, 0.01, -0.2, 1.0, 0.49), 0.3, 1e-15);
  // (x - 2)^2 on [0, 1]: clamped to the bracket.
  EXPECT_EQ(quadratic_interpolation(0.0, 4.0, -4.0, 1.0, 1.0), 1.0);
}

TEST(Lbfgs, ZeroLearningRateFailsWithoutEvaluating) {
  torch::Tensor w = leaf({1.0, -2.0});
  Lbfgs opt({w}, LbfgsOptions{});
  int calls = 0;
  GradientClosure closure =
      quadratic_closure({w}, {torch::tensor({1.0, 3.0}, torch::kFloat64)}, &calls);
  closure();
  opt.step(0.0, closure);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(opt.state_dict().at("lbfgs.fail").item<int64_t>(), 1);
  EXPECT_TRUE(torch::equal(w, torch::tensor({1.0, -2.0}, torch::kFloat64)));
}

// ---- FISTA ----

TEST(Fista, FirstThreeIteratesByHand) {
  const double h[2] = {1.0, 3.0}, lr = 0.1, pq_r[3] = {1.0, 1.0, 4.0};
  torch::Tensor w = leaf({1.0, -2.0});
  Fista opt({w}, FistaOptions{{pq_r[0], pq_r[1], pq_r[2]}});
  GradientClosure closure = quadratic_closure({w}, {torch::tensor({h[0], h[1]}, torch::kFloat64)});
  double y[2] = {1.0, -2.0}, x_prev[2] = {1.0, -2.0}, t = 1.0;
  for (int k = 0; k < 3; ++k) {
    const double t_next = (pq_r[0] + std::sqrt(pq_r[1] + pq_r[2] * t * t)) / 2;
    const double a = (t - 1) / t_next;
    for (int i = 0; i < 2; ++i) {
      const double x = y[i] - lr * h[i] * y[i];
      y[i] = (1 + a) * x - a * x_prev[i];
      x_prev[i] = x;
    }
    t = t_next;
    closure();
    opt.step(lr, closure);
    EXPECT_NEAR(w[0].item<double>(), y[0], 1e-14) << "iterate " << k + 1;
    EXPECT_NEAR(w[1].item<double>(), y[1], 1e-14) << "iterate " << k + 1;
  }
  EXPECT_NEAR(opt.state_dict().at("fista.tk.0").item<double>(), t, 1e-14);
}

// ---- GD-AGC ----

TEST(Agc, UnitwiseNormShapes) {
  EXPECT_EQ(unitwise_norm(torch::ones({5})).dim(), 0);
  EXPECT_DOUBLE_EQ(unitwise_norm(torch::full({4}, 2.0, torch::kFloat64)).item<double>(), 4.0);
  EXPECT_EQ(unitwise_norm(torch::ones({3, 4})).sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(unitwise_norm(torch::ones({2, 3, 2, 2})).sizes(), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(unitwise_norm(torch::ones({5, 1})).sizes(),
            (std::vector<int64_t>{1}));  // squeezes to 1-D
  EXPECT_EQ(unitwise_norm(torch::scalar_tensor(3.0)).dim(), 0);
  EXPECT_THROW(unitwise_norm(torch::ones({2, 2, 2, 2, 2})), UserError);
}

// A conv-shaped weight: output channel 0's gradient is too large and is clipped, channel 1's is
// not; the step (momentum and weight decay 0, lr 1) moves by exactly the clipped gradient.
TEST(Agc, ClipsEachOutputChannelByItsFormula) {
  const double clipping = 0.01, eps = 1e-3;
  torch::Tensor p = torch::linspace(-1.0, 1.0, 24, torch::kFloat64)
                        .reshape({2, 3, 2, 2})
                        .clone()
                        .requires_grad_();
  torch::Tensor g = torch::cat({torch::full({1, 3, 2, 2}, 0.5, torch::kFloat64),
                                torch::full({1, 3, 2, 2}, 1e-4, torch::kFloat64)});
  const torch::Tensor p0 = p.detach().clone();
  std::vector<double> expected(24);
  for (int o = 0; o < 2; ++o) {
    double pn = 0, gn = 0;
    for (int j = 0; j < 12; ++j) {
      pn += std::pow(p0.view(-1)[o * 12 + j].item<double>(), 2);
      gn += std::pow(g.view(-1)[o * 12 + j].item<double>(), 2);
    }
    pn = std::max(std::sqrt(pn), static_cast<double>(static_cast<float>(eps)));
    gn = std::sqrt(gn);
    const double max_norm = pn * clipping;
    const double factor =
        gn > max_norm ? max_norm / std::max(gn, static_cast<double>(static_cast<float>(1e-6)))
                      : 1.0;
    if (o == 0) EXPECT_LT(factor, 1.0);
    if (o == 1) EXPECT_EQ(factor, 1.0);
    for (int j = 0; j < 12; ++j)
      expected[o * 12 + j] =
          p0.view(-1)[o * 12 + j].item<double>() - factor * g.view(-1)[o * 12 + j].item<double>();
  }
  SgdAgc opt({p}, AgcOptions{{0.0, 0.0, false, 0.0}, clipping, eps}, {true});
  p.mutable_grad() = g.clone();
  opt.step(1.0, nullptr);
  EXPECT_TRUE(torch::equal(p.grad(), g));  // .grad() itself is left alone
  EXPECT_TRUE(
      torch::allclose(p.detach().view(-1), torch::tensor(expected, torch::kFloat64), 0, 1e-14));
}

TEST(Agc, TheReferencesUnclippedLayerIsLinear) {
  torch::Tensor conv = torch::ones({2, 1, 1, 1}, torch::kFloat64).requires_grad_();
  torch::Tensor head = torch::ones({2, 2}, torch::kFloat64).requires_grad_();
  OptimizerSettings s = settings("gd-agc");
  s.momentum = 0;
  s.weight_decay = 0;
  auto opt = make_optimizer({conv, head}, {"stem.conv0.weight", "linear.weight"}, s);
  conv.mutable_grad() = torch::ones({2, 1, 1, 1}, torch::kFloat64);
  head.mutable_grad() = torch::ones({2, 2}, torch::kFloat64);
  opt->step(1.0, nullptr);
  EXPECT_TRUE(torch::allclose(conv, torch::full({2, 1, 1, 1}, 1 - 0.01, torch::kFloat64), 0,
                              1e-7));                                      // clipped to 1% of |w|
  EXPECT_TRUE(torch::equal(head, torch::zeros({2, 2}, torch::kFloat64)));  // the full gradient
}

// ---- Adaptive Gradient Descent ----

TEST(AdaptiveGd, SkipsBelowTheRecentMaximumAndScalesTheWeightsAbove) {
  torch::Tensor w = leaf({3.0, 4.0});
  OptimizerSettings s = settings("Adaptive Gradient Descent");
  s.momentum = 0;
  s.weight_decay = 0;
  s.interval = 2;
  auto opt = make_optimizer({w}, {}, s);
  GradientClosure closure = quadratic_closure({w}, {torch::ones({2}, torch::kFloat64)});  // g = w
  const double lr = 0.1;
  // Step 0: the norm 5 recorded twice, an SGD step.
  closure();
  opt->step(lr, closure);
  EXPECT_TRUE(torch::allclose(w, torch::tensor({2.7, 3.6}, torch::kFloat64), 0, 1e-15));
  // Steps 1 and 2: norm 4.5 < 5, then 4.5 < max(5, 4.5): recorded, no step.
  for (int k = 1; k <= 2; ++k) {
    closure();
    opt->step(lr, closure);
    EXPECT_TRUE(torch::allclose(w, torch::tensor({2.7, 3.6}, torch::kFloat64), 0, 1e-15)) << k;
  }
  // Step 3: 4.5 is the recent maximum: w *= 4.5 / (4.5 + 1e-6), then w -= lr g with g from before.
  closure();
  opt->step(lr, closure);
  const double scale = 4.5 / (4.5 + 1e-6);
  EXPECT_NEAR(w[0].item<double>(), 2.7 * scale - lr * 2.7, 1e-14);
  EXPECT_NEAR(w[1].item<double>(), 3.6 * scale - lr * 3.6, 1e-14);
}

// ---- SAM ----

TEST(Sam, TwoPassUpdateByHand) {
  const double rho = 0.05, lr = 0.1;
  torch::Tensor a = leaf({1.0, -2.0}), b = leaf({0.5});
  OptimizerSettings s = settings("gd", "sam");
  s.momentum = 0;
  s.weight_decay = 0;
  s.modification.rho = rho;
  auto opt = make_optimizer({a, b}, {}, s);
  EXPECT_TRUE(opt->needs_closure());
  int calls = 0;
  GradientClosure closure = quadratic_closure(
      {a, b}, {torch::tensor({1.0, 3.0}, torch::kFloat64), torch::tensor({2.0}, torch::kFloat64)},
      &calls);
  const double w[3] = {1.0, -2.0, 0.5}, h[3] = {1.0, 3.0, 2.0};
  double norm = 0;
  for (int i = 0; i < 3; ++i) norm += std::pow(h[i] * w[i], 2);
  norm = std::sqrt(norm);
  double expected[3];
  for (int i = 0; i < 3; ++i) {
    const double perturbed = w[i] + rho / (norm + 1e-12) * h[i] * w[i];
    expected[i] = w[i] - lr * h[i] * perturbed;  // the gradient at w + e, applied at w
  }
  closure();
  opt->step(lr, closure);
  EXPECT_EQ(calls, 2);  // the trainer's evaluation and SAM's second
  EXPECT_NEAR(a[0].item<double>(), expected[0], 1e-14);
  EXPECT_NEAR(a[1].item<double>(), expected[1], 1e-14);
  EXPECT_NEAR(b[0].item<double>(), expected[2], 1e-14);
}

// ---- LARS / LARC ----

void expect_trust_ratios(bool larc) {
  const double tc = larc ? 1.0 : 0.02, eps = 1e-8, wd = 0.1, lr = 0.5;
  torch::Tensor a = leaf({3.0, 4.0}), zero = leaf({0.0, 0.0}), c = leaf({1.0, 2.0, 2.0});
  OptimizerSettings s = settings("gd", larc ? "LARC" : "LARS");
  s.momentum = 0;
  s.weight_decay = wd;
  s.modification.trust_coefficient = tc;
  s.modification.eps = eps;
  auto opt = make_optimizer({a, zero, c}, {}, s);
  const std::vector<std::vector<double>> w = {{3.0, 4.0}, {0.0, 0.0}, {1.0, 2.0, 2.0}};
  const double h[3] = {1.0, 1.0, 2.0};
  GradientClosure closure =
      quadratic_closure({a, zero, c}, {torch::full({2}, h[0], torch::kFloat64),
                                       torch::full({2}, h[1], torch::kFloat64),
                                       torch::full({3}, h[2], torch::kFloat64)});
  closure();
  opt->step(lr, closure);
  const std::vector<torch::Tensor> params = {a, zero, c};
  for (size_t k = 0; k < 3; ++k) {
    double pn = 0, gn = 0;
    for (double v : w[k]) {
      pn += v * v;
      gn += h[k] * v * h[k] * v;
    }
    pn = std::sqrt(pn);
    gn = std::sqrt(gn);
    const bool applies = pn != 0 && gn != 0;  // the zero tensor keeps its (zero) gradient, no decay
    double ratio = applies ? tc * pn / (gn + pn * wd + eps) : 1.0;
    if (larc && applies) ratio = std::min(ratio / lr, 1.0);
    if (larc && k == 0) EXPECT_EQ(ratio, 1.0);  // clipped: min(lr * ratio_LARS, lr) = lr
    if (larc && k == 2) EXPECT_LT(ratio, 1.0);
    for (size_t i = 0; i < w[k].size(); ++i) {
      const double g = h[k] * w[k][i] + (applies ? wd * w[k][i] : 0.0);
      EXPECT_NEAR(params[k][i].item<double>(), w[k][i] - lr * ratio * g, 1e-14) << k << " " << i;
    }
  }
}

TEST(Lars, TrustRatiosByHand) {
  expect_trust_ratios(false);
}
TEST(Larc, ClippedTrustRatiosByHand) {
  expect_trust_ratios(true);
}

// ---- Resume, for every optimizer and modification ----

OptimizerState cloned(const OptimizerState& state) {
  OptimizerState copy;
  for (const auto& entry : state) copy[entry.first] = entry.second.clone();
  return copy;
}

void expect_resume_is_exact(const OptimizerSettings& s) {
  SCOPED_TRACE(s.name + " / " + s.modification.name);
  const double lrs[6] = {0.02, 0.05, 0.1, 0.1, 0.07, 0.04};
  Problem run;
  auto opt = make_optimizer(run.params, kNames, s);
  GradientClosure closure = run.closure();
  for (int k = 0; k < 3; ++k) {
    closure();
    opt->step(lrs[k], closure);
  }
  Problem resumed;
  for (size_t i = 0; i < run.params.size(); ++i) {
    torch::NoGradGuard no_grad;
    resumed.params[i].copy_(run.params[i]);
  }
  auto other = make_optimizer(resumed.params, kNames, s);
  other->load_state_dict(cloned(opt->state_dict()));
  GradientClosure other_closure = resumed.closure();
  for (int k = 3; k < 6; ++k) {
    closure();
    opt->step(lrs[k], closure);
    other_closure();
    other->step(lrs[k], other_closure);
  }
  for (size_t i = 0; i < run.params.size(); ++i)
    EXPECT_TRUE(torch::equal(run.params[i], resumed.params[i])) << i;
  EXPECT_FALSE(torch::equal(run.params[0], Problem().params[0]));  // it did move
}

TEST(OptimizerResume, EveryOptimizerResumesBitForBit) {
  std::vector<OptimizerSettings> all;
  for (const std::string& name : optimizer_names()) all.push_back(settings(name));
  OptimizerSettings damped = settings("gd");
  damped.nesterov = false;
  damped.dampening = 0.1;
  all.push_back(damped);
  OptimizerSettings ams = settings("adam");
  ams.amsgrad = true;
  all.push_back(ams);
  OptimizerSettings plain = settings("lbfgs");
  plain.line_search = "none";
  plain.history_size = 2;  // the history wraps around within the run
  all.push_back(plain);
  OptimizerSettings agd = settings("adaptive-gd");
  agd.interval = 2;  // skipping and scaling within the run
  all.push_back(agd);
  all.push_back(settings("gd", "SAM"));
  all.push_back(settings("fista", "SAM"));
  all.push_back(settings("adam", "LARS"));
  all.push_back(settings("gd-agc", "LARC"));
  all.push_back(settings("Adaptive Gradient Descent", "LARS"));
  for (const OptimizerSettings& s : all) expect_resume_is_exact(s);
}

TEST(OptimizerResume, MismatchedStateIsAUserErrorNamingTheEntry) {
  torch::Tensor a = leaf({1.0, 2.0});
  AdamW opt({a}, AdamWOptions{});
  OptimizerState bad = {{"adam.step.0", int_state(3)},
                        {"adam.exp_avg.0", torch::zeros({3}, torch::kFloat64)},
                        {"adam.exp_avg_sq.0", torch::zeros({2}, torch::kFloat64)}};
  try {
    opt.load_state_dict(bad);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("adam.exp_avg.0"), std::string::npos) << e.what();
  }
  bad.erase("adam.exp_avg.0");
  try {
    opt.load_state_dict(bad);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'adam.exp_avg.0' is missing"), std::string::npos)
        << e.what();
  }
  Sgd sgd({a}, SgdOptions{});
  EXPECT_THROW(sgd.load_state_dict({{"momentum.0", torch::zeros({5})}}), UserError);
}

// ---- Names, settings, bad values ----

TEST(MakeOptimizer, UnknownNamesAreUserErrorsListingTheNames) {
  torch::Tensor a = leaf({1.0});
  OptimizerSettings s;
  s.name = "rmsprop";
  try {
    make_optimizer({a}, {}, s);
    FAIL() << "no error";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hyp.optim.name"), std::string::npos) << what;
    for (const std::string& name : optimizer_names())
      EXPECT_NE(what.find(name), std::string::npos) << what;
  }
  s = OptimizerSettings{};
  s.modification.name = "swa";
  EXPECT_THROW(make_optimizer({a}, {}, s), UserError);
}

TEST(MakeOptimizer, AcceptsTheReferencesAndLowerCaseSpellings) {
  EXPECT_EQ(canonical_optimizer_name("gd"), "Gradient Descent");
  EXPECT_EQ(canonical_optimizer_name("Gradient Descent"), "Gradient Descent");
  EXPECT_EQ(canonical_optimizer_name("adamw"), "Adam");
  EXPECT_EQ(canonical_optimizer_name("l-bfgs"), "L-BFGS");
  EXPECT_EQ(canonical_optimizer_name("lbfgs"), "L-BFGS");
  EXPECT_EQ(canonical_optimizer_name("fista"), "FISTA");
  EXPECT_EQ(canonical_optimizer_name("gd-agc"), "GD-AGC");
  EXPECT_EQ(canonical_optimizer_name("adaptive gradient descent"), "Adaptive Gradient Descent");
  EXPECT_EQ(canonical_modification_name("sam"), "SAM");
  EXPECT_EQ(canonical_modification_name("larc"), "LARC");
  EXPECT_EQ(canonical_modification_name(""), "none");
}

TEST(MakeOptimizer, ReferenceDefaultsAreTheYamlFiles) {
  EXPECT_EQ(reference_optimizer_settings("adam").lr, 1e-3);
  EXPECT_EQ(reference_optimizer_settings("adam").weight_decay, 0.01);
  EXPECT_EQ(reference_optimizer_settings("adam").eps, 1e-8);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").lr, 1.0);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").line_search, "Wolfe");
  EXPECT_EQ(reference_optimizer_settings("gd-agc").lr, 1.6);
  EXPECT_EQ(reference_optimizer_settings("gd-agc").weight_decay, 2e-5);
  EXPECT_EQ(reference_optimizer_settings("fista").weight_decay, 0.0);
  EXPECT_EQ(reference_optimizer_settings("gd").weight_decay, 5e-4);
  // The optimizer keys of each yaml, now read from each optimizer's own options.
  EXPECT_EQ(reference_optimizer_settings("adam").betas, (std::array<double, 2>{0.9, 0.999}));
  EXPECT_FALSE(reference_optimizer_settings("adam").amsgrad);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").eps, 1e-2);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").history_size, 10);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").c1, 1e-4);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").c2, 0.9);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").eta, 2.0);
  EXPECT_EQ(reference_optimizer_settings("lbfgs").max_linesearches, 10);
  EXPECT_EQ(reference_optimizer_settings("gd-agc").eps, 1e-3);
  EXPECT_EQ(reference_optimizer_settings("gd-agc").clipping, 0.01);
  EXPECT_EQ(reference_optimizer_settings("fista").fista_mod, (std::array<double, 3>{1, 1, 4}));
  EXPECT_EQ(reference_optimizer_settings("adaptive-gd").interval, 10);
  EXPECT_EQ(reference_optimizer_settings("adaptive-gd").norm_type, 2.0);
}

// gd.yaml stands in two places by design: OptimizerSettings' defaults (what the config holds) and
// SgdOptions' (Gradient Descent's own options, used without a config). They must agree, and the
// config must hold the settings struct itself, not a copy with defaults of its own.
TEST(MakeOptimizer, GdYamlDefaultsAgreeBetweenTheSettingsAndSgdOptions) {
  static_assert(std::is_same<decltype(Config::Hyp::optim), OptimizerSettings>::value,
                "the config holds the optimizer's settings struct");
  const OptimizerSettings s;
  const SgdOptions o;
  EXPECT_EQ(s.lr, 0.1);
  EXPECT_EQ(s.momentum, 0.9);
  EXPECT_EQ(s.weight_decay, 5e-4);
  EXPECT_TRUE(s.nesterov);
  EXPECT_EQ(s.dampening, 0.0);
  EXPECT_EQ(o.momentum, s.momentum);
  EXPECT_EQ(o.weight_decay, s.weight_decay);
  EXPECT_EQ(o.nesterov, s.nesterov);
  EXPECT_EQ(o.dampening, s.dampening);
  EXPECT_EQ(Config{}.hyp.optim.modification.name, "none");
}

TEST(MakeOptimizer, OnlyLinearLayersWeightDecayFollowsTheReferencesRules) {
  const std::vector<std::string> names = {"stem.conv0.bias",  "body.0.conv1.gain",
                                          "body.0.skip_gain", "layer1.0.bn1.bias",
                                          "fc.weight",        "body.0.conv1.weight"};
  OptimizerSettings s;
  s.weight_decay = 0.5;
  EXPECT_EQ(parameter_weight_decays(names, s), std::vector<double>(6, 0.5));
  s.only_linear_layers_weight_decay = true;
  EXPECT_EQ(parameter_weight_decays(names, s), (std::vector<double>{0, 0, 0, 0, 0.5, 0.5}));
  s.name = "GD-AGC";  // its own rule: biases and gains of stem and conv layers only
  EXPECT_EQ(parameter_weight_decays(names, s), (std::vector<double>{0, 0, 0, 0.5, 0.5, 0.5}));
  s.name = "FISTA";
  EXPECT_EQ(parameter_weight_decays(names, s), std::vector<double>(6, 0.0));
}

// hyp.optim.line_search is resolved from its spelling once, in make_optimizer: any spelling the key
// takes reaches L-BFGS as the same line search (Wolfe needs the closure, none does not).
TEST(MakeOptimizer, LineSearchSpellingsReachLbfgsAsOneValue) {
  torch::Tensor a = leaf({1.0, 2.0});
  for (const std::string& wolfe : {"Wolfe", "wolfe", "WOLFE"}) {
    OptimizerSettings s = settings("lbfgs");
    s.line_search = wolfe;
    EXPECT_TRUE(make_optimizer({a}, {}, s)->needs_closure()) << wolfe;
  }
  for (const std::string& none : {"none", "None", ""}) {
    OptimizerSettings s = settings("lbfgs");
    s.line_search = none;
    EXPECT_FALSE(make_optimizer({a}, {}, s)->needs_closure()) << "'" << none << "'";
  }
}

// A value that is wrong only with another key's value is the user's error, named by the optimizer.
TEST(MakeOptimizer, BadCombinationsAreUserErrors) {
  torch::Tensor a = leaf({1.0, 2.0});
  auto expect_error = [&](OptimizerSettings s, const std::string& what) {
    EXPECT_THROW(make_optimizer({a}, {}, s), UserError) << what;
  };
  OptimizerSettings s = settings("lbfgs");
  s.line_search = "Armijo";
  expect_error(s, "Armijo is not ported");
  s = settings("lbfgs");
  s.c1 = 0.95;
  expect_error(s, "c1 > c2");
  s = settings("lbfgs");
  s.modification.name = "SAM";
  expect_error(s, "SAM around L-BFGS");
  s = settings("gd");
  s.dampening = 0.1;  // with Nesterov
  expect_error(s, "dampening with Nesterov");
}

// A bound of one key is checked once, at the key, where the error names it; an optimizer built
// with such a value anyway was called wrongly (std::invalid_argument, a bug, not a UserError).
TEST(MakeOptimizer, OneKeysBoundIsCheckedAtTheKeyAndIsACallersBugInTheOptimizer) {
  torch::Tensor a = leaf({1.0, 2.0});
  struct Case {
    const char* key;
    const char* bad;
    OptimizerSettings settings;
  };
  auto with = [](const char* name, auto edit, const char* modification = "none") {
    OptimizerSettings s = settings(name, modification);
    edit(s);
    return s;
  };
  const std::vector<Case> cases = {
      {"hyp.optim.betas", "1,0.999",
       with("adam",
            [](auto& s) {
              s.betas = {1.0, 0.999};
            })},
      {"hyp.optim.weight_decay", "-1", with("adam", [](auto& s) { s.weight_decay = -1; })},
      {"hyp.optim.weight_decay", "-1", with("gd", [](auto& s) { s.weight_decay = -1; })},
      {"hyp.optim.history_size", "0", with("lbfgs", [](auto& s) { s.history_size = 0; })},
      {"hyp.optim.eta", "1", with("lbfgs", [](auto& s) { s.eta = 1; })},
      {"hyp.optim.max_linesearches", "0", with("lbfgs", [](auto& s) { s.max_linesearches = 0; })},
      {"hyp.optim.fista_mod", "1,-1,4",
       with("fista",
            [](auto& s) {
              s.fista_mod = {1.0, -1.0, 4.0};
            })},
      {"hyp.optim.clipping", "0", with("gd-agc", [](auto& s) { s.clipping = 0; })},
      {"hyp.optim.eps", "-1", with("gd-agc", [](auto& s) { s.eps = -1; })},
      {"hyp.optim.interval", "0", with("adaptive-gd", [](auto& s) { s.interval = 0; })},
      {"hyp.optim_modification.rho", "-1",
       with(
           "gd", [](auto& s) { s.modification.rho = -1; }, "SAM")},
      {"hyp.optim_modification.trust_coefficient", "0",
       with(
           "gd", [](auto& s) { s.modification.trust_coefficient = 0; }, "LARS")},
      {"hyp.optim_modification.eps", "-1",
       with(
           "gd", [](auto& s) { s.modification.eps = -1; }, "LARS")},
  };
  for (const Case& c : cases) {
    Config config;
    EXPECT_THROW(set_key(config, c.key, c.bad), UserError) << c.key << "=" << c.bad;
    EXPECT_THROW(make_optimizer({a}, {}, c.settings), std::invalid_argument)
        << c.key << "=" << c.bad;
  }
}

TEST(MakeOptimizer, WhoNeedsTheClosure) {
  torch::Tensor a = leaf({1.0});
  EXPECT_FALSE(make_optimizer({a}, {}, settings("gd"))->needs_closure());
  EXPECT_FALSE(make_optimizer({a}, {}, settings("adam"))->needs_closure());
  EXPECT_TRUE(make_optimizer({a}, {}, settings("lbfgs"))->needs_closure());
  EXPECT_TRUE(make_optimizer({a}, {}, settings("adam", "SAM"))->needs_closure());
  EXPECT_FALSE(make_optimizer({a}, {}, settings("adam", "LARS"))->needs_closure());
}

}  // namespace
}  // namespace fullbatch
