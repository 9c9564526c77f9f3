#include "fullbatch/training/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "fullbatch/common/error.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/run/run.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::TempDir;

Config tiny_config(std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {
      "data.name=fashion-mnist", "data.size=256",   "data.batch_size=64", "model.name=resnet18",
      "model.width=4",           "hyp.steps=3",     "hyp.warmup=1",       "impl.threads=2",
      "impl.progress=false",     "impl.device=cpu", "data.test_size=500"};
  o.insert(o.end(), extra.begin(), extra.end());
  return resolve_config("", {}, o);
}

// One full-batch step with lr 1, no momentum and no weight decay moves the weights by exactly
// minus the full gradient, which a model without BatchNorm gives in one big batch.
void expect_step_is_big_batch_gradient(const std::vector<std::string>& extra) {
  std::vector<std::string> o = {
      "model.name=simplecnn",    "data.augmentations=none", "hyp.warmup=0",
      "hyp.scheduler=constant",  "hyp.optim.lr=1",          "hyp.optim.momentum=0",
      "hyp.optim.weight_decay=0"};
  o.insert(o.end(), extra.begin(), extra.end());
  Trainer trainer(testing::prepared(tiny_config(o)), std::make_shared<LocalCommunicator>());
  auto params = trainer.model().parameters();
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.detach().clone());

  torch::Tensor x = normalize(trainer.data().train.images, trainer.data());
  torch::Tensor loss =
      torch::nn::functional::cross_entropy(trainer.model().forward(x), trainer.data().train.labels);
  auto grads = torch::autograd::grad({loss}, params);

  trainer.train_step();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor moved = before[i] - params[i].detach();
    EXPECT_TRUE(torch::allclose(moved, grads[i], 1e-4, 1e-6))
        << "param " << i << " max diff " << (moved - grads[i]).abs().max().item<double>();
  }
}

TEST(Trainer, BlockAccumulationEqualsOneBigBatch) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  expect_step_is_big_batch_gradient({});
}

TEST(Trainer, PerBlockPathAndSubBlocksEqualOneBigBatch) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  expect_step_is_big_batch_gradient({"hyp.sub_batch=16"});
  expect_step_is_big_batch_gradient({"impl.accumulation_dtype=float64"});
}

// bf16 autocast on the CPU: the step is a bf16 approximation of the fp32 full gradient (so it
// differs from it, proving autocast ran) and parameters and gradients stay fp32.
TEST(Trainer, Bf16AutocastOnCpuApproximatesTheFp32Gradient) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto moved_by_step = [](const std::string& precision) {
    Trainer trainer(testing::prepared(tiny_config(
                        {"model.name=simplecnn", "data.augmentations=none", "hyp.warmup=0",
                         "hyp.scheduler=constant", "hyp.optim.lr=1", "hyp.optim.momentum=0",
                         "hyp.optim.weight_decay=0", "impl.mixed_precision=" + precision})),
                    std::make_shared<LocalCommunicator>());
    auto params = trainer.model().parameters();
    std::vector<torch::Tensor> before;
    for (auto& p : params) before.push_back(p.detach().clone());
    trainer.train_step();
    std::vector<torch::Tensor> moved;
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].scalar_type(), torch::kFloat);
      EXPECT_EQ(params[i].grad().scalar_type(), torch::kFloat);
      moved.push_back((before[i] - params[i].detach()).flatten());
    }
    return torch::cat(moved);
  };
  torch::Tensor fp32 = moved_by_step("none");
  torch::Tensor bf16 = moved_by_step("bf16");
  EXPECT_FALSE(torch::equal(fp32, bf16)) << "bf16 autocast changed nothing: was it applied?";
  const double rel = ((bf16 - fp32).norm() / fp32.norm()).item<double>();
  EXPECT_LT(rel, 0.05) << "bf16 full gradient is " << rel << " (relative) away from fp32";
}

// Memory format is a speed setting: one step of a BatchNorm ResNet must move the weights the same
// in channels-last as in NCHW up to float rounding. On 28x28 inputs this ResNet passes a ReLU kink
// within float rounding: a block gradient moves 2-4e-3 from float64 in whichever layout happens to
// round across it (float64 NCHW and channels-last agree to 1e-14; 32x32 inputs stay within 4e-6,
// channels_last_batchnorm_test.cpp), so the bound is 2e-2 relative; a layout mistake (a transposed
// image or weight) is O(1).
TEST(Trainer, ChannelsLastGivesTheSameStep) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto step_taken = [](const std::string& channels_last, bool expect_on,
                       const std::string& width = "8", const std::string& threads = "2") {
    Trainer t(
        testing::prepared(tiny_config(
            {"model.width=" + width, "hyp.warmup=0", "hyp.optim.lr=0.5", "data.augmentations=none",
             "impl.channels_last=" + channels_last, "impl.threads=" + threads})),
        std::make_shared<LocalCommunicator>());
    EXPECT_EQ(t.channels_last(), expect_on) << channels_last;
    std::vector<torch::Tensor> before;
    for (auto& p : t.model().parameters()) before.push_back(p.detach().clone());
    t.train_step();
    std::vector<torch::Tensor> moved;
    size_t i = 0;
    for (auto& p : t.model().parameters()) {
      if (p.dim() == 4)
        EXPECT_TRUE(p.is_contiguous(expect_on ? torch::MemoryFormat::ChannelsLast
                                              : torch::MemoryFormat::Contiguous));
      moved.push_back((before[i++] - p.detach()).contiguous().flatten());
    }
    return torch::cat(moved);
  };
  torch::Tensor nchw = step_taken("false", false);
  torch::Tensor nhwc = step_taken("true", true);
  // Float tolerance, for scale: the same NCHW step on one thread (other summation orders).
  torch::Tensor one_thread = step_taken("false", false, "8", "1");
  const double rel = ((nchw - nhwc).norm() / nchw.norm()).item<double>();
  const double floor = ((nchw - one_thread).norm() / nchw.norm()).item<double>();
  std::cout << "relative difference of the step, NCHW vs channels-last: " << rel
            << "; NCHW on 2 vs 1 threads: " << floor << "\n";
  EXPECT_LT(rel, 2e-2);
  // fp32 on the CPU: channels-last where measured faster (ResNet-18 from width 8 on).
  step_taken("auto", true);
  step_taken("auto", false, "4");
}

TEST(Trainer, SameSeedGivesBitIdenticalRuns) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto run = [](const std::vector<std::string>& extra) {
    Trainer t(testing::prepared(tiny_config(extra)), std::make_shared<LocalCommunicator>());
    std::vector<std::string> lines;
    t.train([&](const StepRecord& r) {
      nlohmann::json j = r.to_json();
      j.erase("step_time_s");
      j.erase("time_s");
      j.erase("images_per_s");
      lines.push_back(j.dump());
    });
    return std::make_pair(lines, state_dict(t.model()));
  };
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {}, {"hyp.grad_reg.block_strength=0.5", "hyp.grad_clip=0.25", "hyp.optim.lr=0.8"}}) {
    auto a = run(extra);
    auto b = run(extra);
    EXPECT_EQ(a.first, b.first);
    ASSERT_EQ(a.second.size(), b.second.size());
    for (const auto& [name, t] : a.second) EXPECT_TRUE(torch::equal(t, b.second.at(name))) << name;
    auto c = run([&] {
      auto e = extra;
      e.push_back("seed=1");
      return e;
    }());
    EXPECT_NE(a.first, c.first) << "a different seed must change the run";
  }
}

TEST(Trainer, FirstStepHasLrZeroAndChangesNoWeights) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Trainer t(testing::prepared(tiny_config({"hyp.warmup=2", "hyp.optim.weight_decay=0"})),
            std::make_shared<LocalCommunicator>());
  auto params = t.model().parameters();
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.detach().clone());
  StepRecord r = t.train_step();
  EXPECT_EQ(r.lr, 0.0);
  ASSERT_TRUE(r.val_accuracy.has_value());
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(before[i], params[i]));
}

TEST(Trainer, SgdTakesOneStepPerBlockAndValidatesOnSchedule) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Trainer t(testing::prepared(tiny_config({"hyp.train_stochastic=true", "hyp.shuffle=true",
                                           "hyp.steps=4", "impl.validate_every_nth_step=2"})),
            std::make_shared<LocalCommunicator>());
  std::vector<StepRecord> records;
  t.train([&](const StepRecord& r) { records.push_back(r); });
  ASSERT_EQ(records.size(), 4u);
  // As the reference: after steps 1, 1 + N, ... and the last (N = 2: steps 1, 3, 4).
  EXPECT_TRUE(records[0].val_accuracy && records[2].val_accuracy && records[3].val_accuracy);
  EXPECT_FALSE(records[1].val_accuracy);
  EXPECT_DOUBLE_EQ(records[3].epoch, 4.0);
  EXPECT_GT(records[3].train_accuracy, 0.0);
}

TEST(Trainer, DivergedRunStopsWithAClearMessageAndKeepsTheRunDirectory) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  Config c = tiny_config({"hyp.optim.lr=1e30", "hyp.warmup=0", "hyp.scheduler=constant",
                          "hyp.steps=5", "model.name=simplecnn"});
  try {
    run_training(c, {dir / "run", false, false});
    FAIL() << "expected divergence";
  } catch (const DivergenceError& e) {
    EXPECT_NE(std::string(e.what()).find("at step"), std::string::npos) << e.what();
  }
  auto summary = nlohmann::json::parse(std::ifstream(dir / "run/summary.json"));
  EXPECT_EQ(summary["status"], "diverged");
  EXPECT_TRUE(std::filesystem::exists(dir / "run/config.yaml"));
}

TEST(Trainer, RunDirectoryHoldsEverythingAndRefusesToOverwrite) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  Config c = tiny_config({"hyp.steps=2", "model.name=simplecnn"});
  nlohmann::json summary = run_training(c, {dir / "run", false, false});
  EXPECT_EQ(summary["status"], "completed");
  for (const char* f : {"config.yaml", "metrics.jsonl", "summary.json", "model.pt"})
    EXPECT_TRUE(std::filesystem::exists(dir / ("run/" + std::string(f)))) << f;
  std::ifstream metrics(dir / "run/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    auto j = nlohmann::json::parse(line);
    for (const char* k :
         {"step", "lr", "train_loss", "train_accuracy", "grad_norm", "time_s", "images_per_s"})
      EXPECT_TRUE(j.contains(k) && j[k].is_number()) << k;
  }
  EXPECT_EQ(lines, 2);
  // model.pt loads back into the same architecture.
  Trainer t(testing::prepared(c), std::make_shared<LocalCommunicator>());
  load_weights(t.model(), dir / "run/model.pt");
  EXPECT_NEAR(t.evaluate().accuracy, summary["final_val_accuracy"].get<double>(), 1e-9);
  EXPECT_THROW(run_training(c, {dir / "run", false, false}), UserError);
}

}  // namespace
}  // namespace fullbatch
