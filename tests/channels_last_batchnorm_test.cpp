// Training-mode BatchNorm on channels-last float32 CPU tensors with statistics summed in double
// (models/channels_last_batchnorm.h), checked against libtorch's BatchNorm2d run in float64
// (an independent computation): the moments, the output, all three gradients, the running
// statistics, a double backward, and a whole ResNet-18 block gradient against float64.
#include "fullbatch/models/channels_last_batchnorm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <vector>

#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/models/model.h"

namespace fullbatch {
namespace {

constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

double relative(const torch::Tensor& value, const torch::Tensor& exact) {
  return ((value.to(torch::kDouble) - exact).norm() / exact.norm()).item<double>();
}

// Inputs whose mean is 30 times their spread, as after a ReLU: where a float sum of the raw
// values loses the spread.
torch::Tensor offset_input(int64_t n, int64_t c, int64_t hw, uint64_t seed) {
  torch::manual_seed(seed);
  return (torch::randn({n, c, hw, hw}) * 0.1 + 3.0).contiguous(kChannelsLast);
}

TEST(ChannelsLastBatchNorm, MomentsMatchFloat64) {
  const torch::Tensor x = offset_input(64, 16, 32, 1);
  auto [mean, var] = channel_moments(x);
  const torch::Tensor x64 = x.to(torch::kDouble);
  const torch::Tensor mean64 = x64.mean({0, 2, 3});
  const torch::Tensor var64 = x64.var({0, 2, 3}, /*unbiased=*/false);
  // Float rounding of the result only: half an ulp (3e-8 relative), with margin.
  EXPECT_LT(((mean.to(torch::kDouble) - mean64).abs() / mean64.abs()).max().item<double>(), 1e-7);
  EXPECT_LT(((var.to(torch::kDouble) - var64).abs() / var64).max().item<double>(), 1e-7);
}

TEST(ChannelsLastBatchNorm, MomentsDoNotDependOnTheThreadCount) {
  const torch::Tensor x = offset_input(16, 24, 16, 2);
  struct RestoreThreads {
    int before = torch::get_num_threads();
    ~RestoreThreads() { torch::set_num_threads(before); }
  } restore;
  torch::set_num_threads(1);
  auto [mean1, var1] = channel_moments(x);
  torch::set_num_threads(2);
  auto [mean2, var2] = channel_moments(x);
  EXPECT_TRUE(torch::equal(mean1, mean2));
  EXPECT_TRUE(torch::equal(var1, var2));
}

// The output, the gradients of input, weight and bias, and the running statistics of one
// BlockBatchNorm2d in channels-last float32 against torch::nn::BatchNorm2d in float64 NCHW.
TEST(ChannelsLastBatchNorm, TrainingStepMatchesFloat64BatchNorm) {
  const int64_t c = 16;
  const torch::Tensor input = offset_input(32, c, 16, 3);
  torch::manual_seed(4);
  const torch::Tensor upstream = torch::randn(input.sizes()).contiguous(kChannelsLast);
  const torch::Tensor gamma = torch::rand({c}) + 0.5, beta = torch::randn({c});

  torch::nn::BatchNorm2d exact(c);
  exact->to(torch::kDouble);
  BlockBatchNorm2d ours(c);
  {
    torch::NoGradGuard no_grad;
    exact->weight.copy_(gamma);
    exact->bias.copy_(beta);
    ours->weight.copy_(gamma);
    ours->bias.copy_(beta);
  }
  const torch::Tensor x64 = input.to(torch::kDouble).contiguous().requires_grad_(true);
  const torch::Tensor y64 = exact(x64);
  (y64 * upstream.to(torch::kDouble)).sum().backward();

  const torch::Tensor x = input.clone().requires_grad_(true);
  const torch::Tensor y = ours(x);
  (y * upstream).sum().backward();
  // The float32 NCHW kernel's output, for scale: y = x * a + b rounds at |x * a| ~ 30 |y|.
  torch::nn::BatchNorm2d nchw(c);
  {
    torch::NoGradGuard no_grad;
    nchw->weight.copy_(gamma);
    nchw->bias.copy_(beta);
  }
  const double nchw_error = relative(nchw(input.contiguous()), y64);

  EXPECT_TRUE(y.is_contiguous(kChannelsLast));
  EXPECT_LT(relative(y, y64), 2 * nchw_error) << "NCHW " << nchw_error;
  EXPECT_LT(relative(y, y64), 3e-6);
  EXPECT_LT(relative(x.grad(), x64.grad()), 1e-5);
  EXPECT_LT(relative(ours->weight.grad(), exact->weight.grad()), 1e-5);
  EXPECT_LT(relative(ours->bias.grad(), exact->bias.grad()), 1e-5);
  EXPECT_LT(relative(ours->running_mean, exact->running_mean), 1e-6);
  EXPECT_LT(relative(ours->running_var, exact->running_var), 1e-6);
  EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 1);
}

// The regularizer's and the analysis's exact Hessian-vector products differentiate the gradient
// again (create_graph): the second derivative must see the statistics' dependence on the input.
TEST(ChannelsLastBatchNorm, DoubleBackwardMatchesFloat64BatchNorm) {
  const int64_t c = 6;
  torch::manual_seed(5);
  const torch::Tensor input = (torch::randn({8, c, 5, 5}) * 0.7 + 0.3).contiguous(kChannelsLast);
  const torch::Tensor upstream = torch::randn(input.sizes()).contiguous(kChannelsLast);
  const torch::Tensor direction = torch::randn(input.sizes()).contiguous(kChannelsLast);
  const torch::Tensor gamma = torch::rand({c}) + 0.5;

  // d/d(x, weight) of <d(loss)/dx, direction>, loss = <bn(x)^2, upstream>.
  auto second = [&](torch::nn::Module& bn, torch::Tensor weight, torch::Tensor x,
                    const torch::Tensor& up, const torch::Tensor& dir) {
    {
      torch::NoGradGuard no_grad;
      weight.copy_(gamma);
    }
    x.requires_grad_(true);
    torch::Tensor y = bn.as<BlockBatchNorm2d>() ? bn.as<BlockBatchNorm2d>()->forward(x)
                                                : bn.as<torch::nn::BatchNorm2d>()->forward(x);
    torch::Tensor loss = (y.square() * up).sum();
    torch::Tensor gx = torch::autograd::grad({loss}, {x}, {}, true, true)[0];
    return torch::autograd::grad({(gx * dir).sum()}, {x, weight});
  };
  torch::nn::BatchNorm2d exact(c);
  exact->to(torch::kDouble);
  BlockBatchNorm2d ours(c);
  auto e = second(*exact, exact->weight, input.to(torch::kDouble).contiguous(),
                  upstream.to(torch::kDouble), direction.to(torch::kDouble));
  auto o = second(*ours, ours->weight, input.clone(), upstream, direction);
  EXPECT_LT(relative(o[0], e[0]), 1e-5);
  EXPECT_LT(relative(o[1], e[1]), 1e-5);
}

// An affine-free BatchNorm (no weight, no bias) takes the same channels-last path.
TEST(ChannelsLastBatchNorm, WorksWithoutAffineParameters) {
  const int64_t c = 8;
  const torch::Tensor input = offset_input(16, c, 8, 9);
  torch::nn::BatchNorm2d exact(torch::nn::BatchNormOptions(c).affine(false));
  exact->to(torch::kDouble);
  BlockBatchNorm2d ours(torch::nn::BatchNormOptions(c).affine(false));
  const torch::Tensor x64 = input.to(torch::kDouble).contiguous().requires_grad_(true);
  exact(x64).relu().sum().backward();
  const torch::Tensor x = input.clone().requires_grad_(true);
  ours(x).relu().sum().backward();
  EXPECT_LT(relative(x.grad(), x64.grad()), 1e-5);
}

// A ResNet-18 block gradient (BatchNorm in training mode) in channels-last float32 is as close to
// the float64 gradient as the NCHW float32 one (within 2x; libtorch 1.13's own channels-last
// kernel put it 1000x further away here), and so is the regularizer's forward difference
// (g(theta + h d) - g(theta)) / h along the normalized gradient d with h = 0.01, which divides
// rounding errors by the small step. Over five batches: on a few pre-activations within float
// rounding of zero, float32 in either layout can land on the other side of a ReLU than float64 (a
// layout-independent event that moves that batch's gradient ~1000x and its forward difference
// ~500x; here 1 to 3 batches of 5 per layout), so the gradients compare by their median and the
// forward differences, where these events are more frequent, by the best batch of each layout. A
// systematic error (libtorch 1.13's channels-last kernel, float sums) moves every batch and fails
// both.
TEST(ChannelsLastBatchNorm, ResNetBlockGradientIsAsExactAsNchw) {
  ModelSpec spec;
  spec.width = 8;
  // The block gradient at the initial weights moved by h * direction (direction in float64).
  auto gradient = [&](torch::ScalarType dtype, bool channels_last, const torch::Tensor& direction,
                      double h, uint64_t batch_seed) {
    ModelPtr model = make_model(spec, /*init_seed=*/11);
    model->to(torch::kDouble);
    if (direction.defined()) {
      torch::NoGradGuard no_grad;
      int64_t offset = 0;
      for (auto& p : model->parameters()) {
        p.add_(direction.slice(0, offset, offset + p.numel()).view_as(p), h);
        offset += p.numel();
      }
    }
    model->to(dtype);
    torch::manual_seed(batch_seed);
    torch::Tensor x = (torch::randn({32, 3, 32, 32}) * 0.25 + 0.4).to(dtype);
    torch::Tensor y = torch::randint(0, 10, {32});
    if (channels_last) {
      for (auto& p : model->parameters())
        if (p.dim() == 4) p.set_data(p.contiguous(kChannelsLast));
      x = x.contiguous(kChannelsLast);
    }
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().flatten());
    return torch::cat(grads).to(torch::kDouble);
  };
  const double h = 0.01;
  std::vector<double> nchw, channels_last, nchw_difference, channels_last_difference;
  for (uint64_t seed = 12; seed < 17; ++seed) {
    const torch::Tensor exact = gradient(torch::kDouble, false, {}, 0, seed);
    const torch::Tensor direction = exact / exact.norm();
    auto difference = [&](torch::ScalarType dtype, bool channels_last) {
      return (gradient(dtype, channels_last, direction, h, seed) -
              gradient(dtype, channels_last, {}, 0, seed)) /
             h;
    };
    const torch::Tensor exact_difference = difference(torch::kDouble, false);
    nchw.push_back(relative(gradient(torch::kFloat, false, {}, 0, seed), exact));
    channels_last.push_back(relative(gradient(torch::kFloat, true, {}, 0, seed), exact));
    nchw_difference.push_back(relative(difference(torch::kFloat, false), exact_difference));
    channels_last_difference.push_back(relative(difference(torch::kFloat, true), exact_difference));
    std::cout << "batch " << seed << ": relative distance to float64 of a block gradient: NCHW "
              << nchw.back() << ", channels-last " << channels_last.back()
              << "; of the forward difference: NCHW " << nchw_difference.back()
              << ", channels-last " << channels_last_difference.back() << "\n";
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  EXPECT_LT(median(nchw), 1e-2);
  EXPECT_LT(median(channels_last), 2 * median(nchw)) << "NCHW " << median(nchw);
  auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  EXPECT_LT(best(channels_last_difference), 2 * best(nchw_difference))
      << "NCHW " << best(nchw_difference);
}

}  // namespace
}  // namespace fullbatch
