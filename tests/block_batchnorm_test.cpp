// Several full-batch blocks in one pass (impl.blocks_per_pass, models/block_batchnorm.h): the
// grouped BatchNorm against libtorch's own BatchNorm2d applied block by block, and the trainer's
// grouped step against its block-by-block step (ragged last block, several ranks in
// distributed_test.cpp).
#include "fullbatch/models/block_batchnorm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "fullbatch/config/resolve.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// K blocks of n images, each through torch::nn::BatchNorm2d on its own (an independent
// computation), against all of them through one BlockBatchNorm2d pass with groups = K: outputs,
// the gradients of input, weight and bias under the same upstream gradient, and the running
// statistics after the K updates.
void expect_grouped_equals_sequential(c10::optional<double> momentum) {
  const int64_t k = 3, n = 5, c = 4, h = 3, w = 2;
  torch::manual_seed(7);
  const torch::Tensor input = torch::randn({k * n, c, h, w}) * 2 + 0.5;
  const torch::Tensor upstream = torch::randn({k * n, c, h, w});
  const torch::Tensor gamma = torch::rand({c}) + 0.5, beta = torch::randn({c});
  const auto options = torch::nn::BatchNormOptions(c).momentum(momentum);

  torch::nn::BatchNorm2d plain(options);
  BlockBatchNorm2d grouped(options);
  auto set = [&](torch::Tensor& weight, torch::Tensor& bias, torch::Tensor& mean,
                 torch::Tensor& var) {
    torch::NoGradGuard no_grad;
    weight.copy_(gamma);
    bias.copy_(beta);
    mean.copy_(torch::linspace(-1, 1, c));
    var.fill_(1.5);
  };
  set(plain->weight, plain->bias, plain->running_mean, plain->running_var);
  set(grouped->weight, grouped->bias, grouped->running_mean, grouped->running_var);

  torch::Tensor x1 = input.clone().requires_grad_(true);
  std::vector<torch::Tensor> outs;
  for (const torch::Tensor& block : x1.chunk(k, 0)) outs.push_back(plain(block));
  torch::Tensor y1 = torch::cat(outs);
  (y1 * upstream).sum().backward();

  torch::Tensor x2 = input.clone().requires_grad_(true);
  torch::Tensor y2;
  {
    grouped->set_groups(k);
    y2 = grouped(x2);
    grouped->set_groups(1);
  }
  (y2 * upstream).sum().backward();

  // Each block goes through the same kernel as on its own: outputs, input gradients and running
  // statistics bit for bit; the parameters' gradients sum the blocks' parts in another order.
  EXPECT_TRUE(torch::equal(y1, y2)) << max_abs_diff(y1, y2);
  EXPECT_TRUE(torch::equal(x1.grad(), x2.grad())) << max_abs_diff(x1.grad(), x2.grad());
  EXPECT_LT(max_abs_diff(plain->weight.grad(), grouped->weight.grad()), 1e-5);
  EXPECT_LT(max_abs_diff(plain->bias.grad(), grouped->bias.grad()), 1e-5);
  EXPECT_TRUE(torch::equal(plain->running_mean, grouped->running_mean));
  EXPECT_TRUE(torch::equal(plain->running_var, grouped->running_var));
  EXPECT_EQ(plain->num_batches_tracked.item<int64_t>(), k);
  EXPECT_EQ(grouped->num_batches_tracked.item<int64_t>(), k);
  // The running statistics did move (a no-op would pass the comparison above only if both did).
  EXPECT_GT(max_abs_diff(plain->running_mean, torch::linspace(-1, 1, c)), 1e-2);
}

TEST(BlockBatchNorm, GroupedPassEqualsEachBlockThroughTorchsBatchNorm) {
  expect_grouped_equals_sequential(0.1);
}

TEST(BlockBatchNorm, GroupedPassEqualsEachBlockWithACumulativeAverage) {
  expect_grouped_equals_sequential(c10::nullopt);
}

TEST(BlockBatchNorm, OneGroupAndEvalModeAreTorchsBatchNormBitForBit) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({8, 3, 4, 4});
  torch::nn::BatchNorm2d plain(3);
  BlockBatchNorm2d grouped(3);
  EXPECT_TRUE(torch::equal(plain(x), grouped(x)));
  EXPECT_TRUE(torch::equal(plain->running_mean, grouped->running_mean));
  plain->eval();
  grouped->eval();
  grouped->set_groups(4);  // eval mode normalizes with the running statistics: nothing to split
  EXPECT_TRUE(torch::equal(plain(x), grouped(x)));
}

// The same tensors as torch::nn::BatchNorm2d, under the same names, in the same order, with the
// same initial values, so model files and checkpoints do not change.
TEST(BlockBatchNorm, HoldsTorchsBatchNormStateUnderItsNames) {
  torch::nn::BatchNorm2d plain(5);
  BlockBatchNorm2d ours(5);
  auto a = plain->named_parameters(), b = ours->named_parameters();
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& key : a.keys()) EXPECT_TRUE(torch::equal(a[key], b[key])) << key;
  auto ba = plain->named_buffers(), bb = ours->named_buffers();
  ASSERT_EQ(ba.keys(), bb.keys());
  for (const auto& key : ba.keys()) {
    EXPECT_TRUE(torch::equal(ba[key], bb[key])) << key;
    EXPECT_EQ(ba[key].scalar_type(), bb[key].scalar_type()) << key;
  }
}

// A classifier holding libtorch's own BatchNorm2d: its batch cannot be split into blocks.
class PlainBatchNormNet : public Classifier {
 public:
  PlainBatchNormNet() : bn_(register_module("bn", torch::nn::BatchNorm2d(1))) {}
  torch::Tensor forward(const torch::Tensor& x) override { return bn_(x).flatten(1); }

 private:
  torch::nn::BatchNorm2d bn_;
};

// A classifier whose forward runs layers that are not its submodules (as a TorchScript module's).
class OpaqueNet : public Classifier {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return x.flatten(1); }
  bool layers_are_submodules() const override { return false; }
};

TEST(BlockBatchNorm, OnlyModelsWhoseBatchNormsSplitCanGroup) {
  for (const std::string name :
       {"resnet18", "vgg11", "densenet121", "pyramidnet110", "simplecnn"}) {
    ModelSpec spec;
    spec.name = name;
    spec.width = 4;
    EXPECT_TRUE(can_group_blocks(*make_model(spec, 0))) << name;
  }
  EXPECT_FALSE(can_group_blocks(*std::make_shared<PlainBatchNormNet>()));
  EXPECT_FALSE(can_group_blocks(*std::make_shared<OpaqueNet>()));
}

Config tiny(const std::vector<std::string>& extra) {
  // 300 images in blocks of 64: four full blocks and a ragged one of 44.
  std::vector<std::string> o = {
      "data.name=fashion-mnist", "data.size=300",       "data.batch_size=64", "model.name=resnet18",
      "model.width=4",           "hyp.steps=1",         "hyp.warmup=0",       "hyp.optim.lr=0.5",
      "impl.threads=1",          "impl.progress=false", "impl.device=cpu",    "data.test_size=100"};
  o.insert(o.end(), extra.begin(), extra.end());
  return resolve_config("", {}, o);
}

// Parameters and floating buffers (BatchNorm running statistics) after the run's steps.
std::vector<torch::Tensor> state_after_steps(Trainer& trainer) {
  for (int64_t s = 0; s < trainer.options().steps; ++s) trainer.train_step();
  std::vector<torch::Tensor> state;
  for (const auto& p : trainer.model().parameters()) state.push_back(p.detach().clone());
  for (const auto& b : trainer.model().buffers()) state.push_back(b.detach().clone());
  return state;
}

TEST(Trainer, BlocksPerPassGivesTheBlockByBlockStep) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Trainer one(testing::prepared(tiny({})), std::make_shared<LocalCommunicator>());
  // Groups of three: blocks 0-2 together, then 3 with the ragged 4, which goes alone.
  Trainer grouped(testing::prepared(tiny({"impl.blocks_per_pass=3"})),
                  std::make_shared<LocalCommunicator>());
  EXPECT_EQ(one.blocks_per_pass(), 1);
  EXPECT_EQ(grouped.blocks_per_pass(), 3);
  std::vector<torch::Tensor> start;
  for (const auto& p : one.model().parameters()) start.push_back(p.detach().clone());
  const std::vector<torch::Tensor> a = state_after_steps(one), b = state_after_steps(grouped);
  ASSERT_EQ(a.size(), b.size());
  double moved = 0, differ = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    moved += (a[i] - start[i]).pow(2).sum().item<double>();
    differ += (a[i] - b[i]).pow(2).sum().item<double>();
  }
  // One step agrees to float rounding, relative to how far the weights moved. (Over more steps
  // the two drift apart as any change of summation order does: after two steps at lr 0.5 the
  // grouped run is 3.5e-3 from the block-by-block one, 1 thread against 2 threads 4.8e-3.)
  EXPECT_LT(std::sqrt(differ / moved), 1e-4)
      << "moved " << std::sqrt(moved) << " steps " << one.options().steps;
  for (size_t i = start.size(); i < a.size(); ++i) {
    if (!a[i].is_floating_point()) {
      EXPECT_TRUE(torch::equal(a[i], b[i])) << "num_batches_tracked, buffer " << i;
      continue;
    }
    EXPECT_LT(max_abs_diff(a[i], b[i]), 1e-4 * (1 + a[i].abs().max().item<double>()))
        << "buffer " << i;
  }
}

TEST(Trainer, BlocksPerPassFallsBackToOneWhereBlocksNeedTheirOwnGradient) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  for (const std::string key :
       {"hyp.grad_reg.block_strength=0.5", "hyp.batch_clip=1", "hyp.sub_batch=16",
        "impl.accumulation_dtype=float64", "impl.mixed_precision=bf16"}) {
    Trainer t(testing::prepared(tiny({"impl.blocks_per_pass=3", key})),
              std::make_shared<LocalCommunicator>());
    EXPECT_EQ(t.blocks_per_pass(), 1) << key;
  }
}

}  // namespace
}  // namespace fullbatch
