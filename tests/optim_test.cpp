#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "fullbatch/common/rng.h"
#include "fullbatch/data/data_order.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/schedule.h"
#include "fullbatch/optim/sgd.h"
#include "fullbatch/optim/stability.h"

namespace fullbatch {
namespace {

ScheduleSpec schedule(const std::string& text) {
  ScheduleSpec s;
  EXPECT_TRUE(parse_schedule(text, s)) << text;
  return s;
}

TEST(Schedule, WarmupStartsAtZeroAndIsLinear) {
  ScheduleSettings s{0.4, 400, schedule("cosine-4000"), 3000};
  EXPECT_EQ(learning_rate(s, 0), 0.0);
  EXPECT_NEAR(learning_rate(s, 100), 0.1, 1e-15);
  EXPECT_NEAR(learning_rate(s, 399), 0.4 * 399 / 400, 1e-15);
  EXPECT_NEAR(learning_rate(s, 400), 0.4, 1e-15);
}

// The reference wraps torch's CosineAnnealingLR in a gradual warm-up that hands over one step
// late: the peak lr is used at steps W and W + 1, and the cosine's clock is step - W - 1.
TEST(Schedule, CosineNHoldsThePeakTwoStepsAndStartsItsClockAfter) {
  ScheduleSettings s{0.4, 400, schedule("cosine-4000"), 3000};
  EXPECT_EQ(learning_rate(s, 400), 0.4);
  EXPECT_EQ(learning_rate(s, 401), 0.4);
  for (int64_t step : {402, 1000, 2000, 2999}) {
    double expected = 0.4 * 0.5 * (1 + std::cos(M_PI * (step - 401) / 4000.0));
    EXPECT_NEAR(learning_rate(s, step), expected, 1e-14) << step;
  }
  // The reference's last step of fb2 (measured with torch's schedulers, tests/parity/README.md).
  EXPECT_NEAR(learning_rate(s, 2999), 0.10948, 1e-5);
  s.base_lr = 0.8;
  EXPECT_NEAR(learning_rate(s, 2999), 0.21896, 1e-5);
}

TEST(Schedule, CosineDecayHasThePeriodOfTheRunAndNeverReachesZero) {
  ScheduleSettings s{0.1, 5, schedule("cosine-decay"), 300};
  EXPECT_EQ(learning_rate(s, 5), 0.1);
  EXPECT_EQ(learning_rate(s, 6), 0.1);
  EXPECT_NEAR(learning_rate(s, 7), 0.1 * 0.5 * (1 + std::cos(M_PI / 300.0)), 1e-15);
  EXPECT_NEAR(learning_rate(s, 152), 0.1 * 0.5 * (1 + std::cos(M_PI * 146 / 300.0)), 1e-15);
  EXPECT_NEAR(learning_rate(s, 299), 1.343e-4, 1e-7);  // the reference's last SGD epoch
  ScheduleSettings no_warmup{0.1, 0, schedule("cosine-decay"), 300};
  EXPECT_EQ(learning_rate(no_warmup, 0), 0.1);
  EXPECT_NEAR(learning_rate(no_warmup, 150), 0.05, 1e-15);
  ScheduleSettings c{0.3, 0, schedule("constant"), 10};
  EXPECT_EQ(learning_rate(c, 7), 0.3);
  ScheduleSettings l{1.0, 0, schedule("linear-decay"), 10};
  EXPECT_NEAR(learning_rate(l, 5), 0.5, 1e-15);
}

TEST(Sgd, NesterovWeightDecayMatchesHandComputation) {
  torch::Tensor p = torch::tensor({1.0, -2.0}, torch::kFloat64).requires_grad_();
  Sgd opt({p}, {0.9, 0.1, true});
  const double lr = 0.5;
  double w[2] = {1.0, -2.0}, buf[2] = {0, 0};
  const double grads[3][2] = {{0.5, 0.25}, {-1.0, 2.0}, {0.0, 0.125}};
  for (int s = 0; s < 3; ++s) {
    p.mutable_grad() = torch::tensor({grads[s][0], grads[s][1]}, torch::kFloat64);
    opt.step(lr);
    for (int i = 0; i < 2; ++i) {
      double d = grads[s][i] + 0.1 * w[i];
      buf[i] = s == 0 ? d : 0.9 * buf[i] + d;
      w[i] -= lr * (d + 0.9 * buf[i]);
      EXPECT_NEAR(p[i].item<double>(), w[i], 1e-15) << "step " << s << " index " << i;
    }
  }
}

TEST(Sgd, MatchesTorchOptimSgd) {
  for (bool nesterov : {true, false}) {
    torch::Tensor a = torch::randn({5, 3}, torch::kFloat64).requires_grad_();
    torch::Tensor b = a.detach().clone().requires_grad_();
    Sgd ours({a}, {0.9, 5e-4, nesterov});
    torch::optim::SGD theirs({b}, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4).nesterov(nesterov));
    for (int s = 0; s < 5; ++s) {
      torch::Tensor g = torch::randn({5, 3}, torch::kFloat64);
      a.mutable_grad() = g.clone();
      b.mutable_grad() = g.clone();
      ours.step(0.1);
      theirs.step();
    }
    EXPECT_TRUE(torch::allclose(a, b, 0, 1e-14)) << "nesterov=" << nesterov;
  }
}

TEST(Sgd, StateDictRestoresMomentum) {
  torch::Tensor a = torch::ones({3}).requires_grad_();
  Sgd opt({a}, {0.9, 0, false});
  a.mutable_grad() = torch::ones({3});
  opt.step(0.1);
  auto state = opt.state_dict();
  torch::Tensor b = a.detach().clone().requires_grad_();
  Sgd other({b}, {0.9, 0, false});
  other.load_state_dict(state);
  a.mutable_grad() = torch::full({3}, 2.0);
  b.mutable_grad() = torch::full({3}, 2.0);
  opt.step(0.1);
  other.step(0.1);
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(Gradients, ClipScalesToExactNormAndKeepsDirection) {
  std::vector<torch::Tensor> g = {torch::tensor({3.0, 0.0}, torch::kFloat64),
                                  torch::tensor({4.0}, torch::kFloat64)};
  torch::Tensor before = clip_to_norm(g, 0.25);
  EXPECT_DOUBLE_EQ(before.item<double>(), 5.0);
  // The reference's (and torch's clip_grad_norm_) factor: max / (norm + 1e-6).
  const double factor = 0.25 / (5.0 + 1e-6);
  EXPECT_NEAR(global_norm(g).item<double>(), 5.0 * factor, 1e-15);
  EXPECT_NEAR(g[0][0].item<double>(), 3.0 * factor, 1e-15);
  EXPECT_NEAR(g[1][0].item<double>(), 4.0 * factor, 1e-15);
  std::vector<torch::Tensor> small = {torch::tensor({0.1, 0.1}, torch::kFloat64)};
  clip_to_norm(small, 1.0);
  EXPECT_TRUE(torch::equal(small[0], torch::tensor({0.1, 0.1}, torch::kFloat64)));
  std::vector<torch::Tensor> inf = {torch::tensor({-2.0, 1.0}, torch::kFloat64)};
  EXPECT_DOUBLE_EQ(clip_to_norm(inf, 1.0, INFINITY).item<double>(), 2.0);
  EXPECT_NEAR(inf[0][0].item<double>(), -2.0 * (1.0 / (2.0 + 1e-6)), 1e-15);
}

TEST(Gradients, NoiseHasTheRequestedScaleAndIsKeyed) {
  std::vector<torch::Tensor> g = {torch::zeros({200000})};
  auto gen = keyed_generator(1, Stream::kNoise, {7});
  add_gradient_noise(g, NoiseSettings{0.5, 0.0}, gen);
  EXPECT_NEAR(g[0].std().item<double>(), 0.5, 0.01);
  EXPECT_NEAR(g[0].mean().item<double>(), 0.0, 0.01);
  std::vector<torch::Tensor> h = {torch::zeros({200000})};
  auto same = keyed_generator(1, Stream::kNoise, {7});
  add_gradient_noise(h, NoiseSettings{0.5, 0.0}, same);
  EXPECT_TRUE(torch::equal(g[0], h[0]));
  std::vector<torch::Tensor> m = {torch::full({200000}, 2.0)};
  auto gen2 = keyed_generator(1, Stream::kNoise, {8});
  add_gradient_noise(m, NoiseSettings{0.0, 0.1}, gen2);
  EXPECT_NEAR(m[0].mean().item<double>(), 2.0, 0.01);
  EXPECT_NEAR(m[0].std().item<double>(), 0.2, 0.005);
}

TEST(DataOrder, FixedBlocksDropTheLastIncompleteOne) {
  OrderSettings s;
  s.num_samples = 1000;
  s.batch_size = 128;
  auto blocks = block_order(s, 0);
  ASSERT_EQ(blocks.size(), 7u);
  EXPECT_EQ(blocks[1][0].item<int64_t>(), 128);
  EXPECT_TRUE(torch::equal(blocks[3], block_order(s, 99)[3]));
}

TEST(DataOrder, ShuffleIsAPermutationKeyedByClock) {
  OrderSettings s;
  s.num_samples = 512;
  s.batch_size = 64;
  s.shuffle = true;
  s.seed = 3;
  auto a = torch::cat(block_order(s, 5));
  EXPECT_TRUE(torch::equal(std::get<0>(a.sort()), torch::arange(512)));
  EXPECT_TRUE(torch::equal(a, torch::cat(block_order(s, 5))));
  EXPECT_FALSE(torch::equal(a, torch::cat(block_order(s, 6))));
  s.with_replacement = true;
  auto r = torch::cat(block_order(s, 5));
  EXPECT_LT(std::get<0>(at::_unique(r)).numel(), 512);  // duplicates: drawn with replacement
}

// Sgd with lr 1 on 0.5 lambda x^2 for `steps` steps from x = 1: |x| at the end.
double sgd_on_quadratic(double lambda, double momentum, bool nesterov, double dampening,
                        int steps) {
  torch::Tensor x = torch::ones({1}, torch::kFloat64).requires_grad_(true);
  Sgd sgd({x}, SgdOptions{momentum, 0.0, nesterov, dampening});
  for (int i = 0; i < steps; ++i) {
    x.mutable_grad() = (lambda * x).detach();
    sgd.step(1.0);
    if (!std::isfinite(x.item<double>())) return INFINITY;
  }
  return std::abs(x.item<double>());
}

OptimizerSettings gd_settings(double momentum, bool nesterov, double dampening) {
  OptimizerSettings s;
  s.momentum = momentum, s.nesterov = nesterov, s.dampening = dampening;
  return s;
}

// The limit the report draws, checked against our own optimizer: 1% below it the iterate
// shrinks, 1% above it grows (the old (2+2m)/lr line for Nesterov is 2.8x too high at m 0.9 and
// fails the "below" half).
TEST(Stability, SgdConvergesJustBelowAndDivergesJustAboveTheLimit) {
  struct Case {
    double m;
    bool nesterov;
    double d;
    double expected;  // the closed form, lr 1
  };
  const Case cases[] = {{0.0, false, 0.0, 2.0},  {0.0, true, 0.0, 2.0},
                        {0.9, false, 0.0, 3.8},  {0.9, false, 0.5, 7.6},
                        {0.5, false, 0.25, 4.0}, {0.9, true, 0.0, 3.8 / 2.8},
                        {0.5, true, 0.0, 1.5}};
  for (const Case& c : cases) {
    const StabilityLimit limit = stability_limit(gd_settings(c.m, c.nesterov, c.d));
    ASSERT_TRUE(limit.scale.has_value()) << limit.reason;
    EXPECT_NEAR(*limit.scale, c.expected, 1e-12) << limit.label;
    const int steps = 20000;
    EXPECT_LT(sgd_on_quadratic(0.99 * *limit.scale, c.m, c.nesterov, c.d, steps), 1e-3)
        << limit.label;
    EXPECT_GT(sgd_on_quadratic(1.01 * *limit.scale, c.m, c.nesterov, c.d, steps), 1e3)
        << limit.label;
  }
}

// Sgd refuses Nesterov with dampening (as torch), so the general Nesterov formula is checked on
// the iteration written out: buf = m buf + (1 - d) g; x -= lr (g + m buf).
TEST(Stability, DampenedNesterovFormulaMatchesItsIteration) {
  const double m = 0.8, d = 0.3;
  const StabilityLimit limit = stability_limit(gd_settings(m, true, d));
  ASSERT_TRUE(limit.scale.has_value());
  auto run = [&](double lambda) {
    double x = 1, buf = 0;
    for (int i = 0; i < 20000 && std::isfinite(x); ++i) {
      const double g = lambda * x;
      buf = i == 0 ? g : m * buf + (1 - d) * g;
      x -= g + m * buf;
    }
    return std::abs(x);
  };
  EXPECT_LT(run(0.99 * *limit.scale), 1e-3);
  EXPECT_GT(run(1.01 * *limit.scale), 1e3);
}

TEST(Stability, AdaptiveOptimizersAndModificationsHaveNone) {
  for (const char* name : {"adam", "lbfgs", "fista", "agc", "adaptive-gd"}) {
    OptimizerSettings s;
    s.name = name;
    const StabilityLimit limit = stability_limit(s);
    EXPECT_FALSE(limit.scale.has_value()) << name;
    EXPECT_FALSE(limit.reason.empty()) << name;
  }
  OptimizerSettings sam;
  sam.modification.name = "SAM";
  EXPECT_FALSE(stability_limit(sam).scale.has_value());
}

}  // namespace
}  // namespace fullbatch
