// Every knob of the reference implementation that changes results: each test fails when the
// knob is ignored or wrong.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fullbatch/config/resolve.h"
#include "fullbatch/data/augment.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

Config config_with(std::vector<std::string> extra) {
  std::vector<std::string> o = {"data.name=fashion-mnist", "data.size=256", "data.batch_size=64",
                                "model.name=simplecnn",    "model.width=4", "hyp.steps=3",
                                "impl.threads=2",          "impl.progress=false",
                                "impl.device=cpu",         "data.augmentations=none", "data.test_size=500",
                                "hyp.warmup=0",            "hyp.scheduler=constant",
                                "hyp.optim.lr=1",          "hyp.optim.momentum=0",
                                "hyp.optim.weight_decay=0"};
  o.insert(o.end(), extra.begin(), extra.end());
  return resolve_config("", {}, o);
}

std::unique_ptr<Trainer> make_trainer(std::vector<std::string> extra) {
  return std::make_unique<Trainer>(testing::prepared(config_with(extra)), std::make_shared<LocalCommunicator>());
}

std::vector<torch::Tensor> snapshot(Trainer& t) {
  std::vector<torch::Tensor> out;
  for (auto& p : t.model().parameters()) out.push_back(p.detach().clone());
  return out;
}

torch::Tensor flat(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> parts;
  for (auto& t : ts) parts.push_back(t.reshape(-1));
  return torch::cat(parts);
}

// The full-batch loss of the whole (un-augmented) training set, as one big batch.
torch::Tensor big_batch_loss(Trainer& t, double label_smoothing = 0.0) {
  torch::Tensor x = normalize(t.data().train.images, t.data());
  return torch::nn::functional::cross_entropy(
      t.model().forward(x), t.data().train.labels,
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
}

torch::Tensor big_batch_gradient(Trainer& t) {
  return flat(torch::autograd::grad({big_batch_loss(t)}, t.model().parameters()));
}

TEST(Knobs, AdditiveGradientNoiseHasTheRequestedScale) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"hyp.grad_noise.additive=0.01"});
  auto before = flat(snapshot(*t));
  auto g = big_batch_gradient(*t);
  t->train_step();
  torch::Tensor noise = (before - flat(snapshot(*t))) - g;
  EXPECT_NEAR(noise.std().item<double>(), 0.01, 0.001);
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 0.001);
}

TEST(Knobs, MultiplicativeGradientNoiseHasTheRequestedScale) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"hyp.grad_noise.multiplicative=0.5"});
  auto before = flat(snapshot(*t));
  auto g = big_batch_gradient(*t);
  t->train_step();
  torch::Tensor moved = before - flat(snapshot(*t));
  torch::Tensor mask = g.abs() > 1e-5;
  torch::Tensor factor = moved.masked_select(mask) / g.masked_select(mask) - 1.0;
  EXPECT_NEAR(factor.std().item<double>(), 0.5, 0.05);
  EXPECT_NEAR(factor.mean().item<double>(), 0.0, 0.05);
}

// ReLU networks have kinks, so a finite difference is not the exact Hessian-vector product
// there (the smooth-network comparison is in regularizer_test). Here the full-gradient penalty
// is checked against the same forward difference computed independently on one big batch.
TEST(Knobs, FullGradientPenaltyIsTheForwardDifferenceOfTheFullGradient) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  const double alpha = 1.0, lr = 1.0, eps = 1e-2;
  auto t = make_trainer({"hyp.grad_reg.acc_strength=1", "hyp.grad_reg.eps=0.01"});
  auto params = t->model().parameters();
  auto before = snapshot(*t);
  torch::Tensor g = big_batch_gradient(*t);
  const double eps_n = eps / (alpha * g.norm().item<double>());
  {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (auto& p : params) {
      p.add_(g.slice(0, offset, offset + p.numel()).view_as(p), eps_n * alpha);
      offset += p.numel();
    }
  }
  torch::Tensor g_shifted = big_batch_gradient(*t);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(before[i]);
  }
  torch::Tensor expected_term = lr / 4 * (g_shifted - g) / eps_n;
  t->train_step();
  torch::Tensor term = (flat(before) - flat(snapshot(*t))) - g;
  ASSERT_GT(expected_term.norm().item<double>(), 1e-4);
  EXPECT_LT((term - expected_term).norm().item<double>() / expected_term.norm().item<double>(), 0.02);
}

// hyp.grad_reg.every_nth_block = N: at step s the penalty goes to blocks with (b + s) % N == 0
// only, its term scaled by N. Checked on the first step (lr 1, no momentum or weight decay, so
// the weights move by exactly the full gradient) against per-block double backprop.
TEST(Knobs, EveryNthBlockPenalizesARotatingSubsetScaledByN) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  const double alpha = 0.5, lr = 1.0;
  const int64_t every = 2, blocks = 4, batch = 64;
  auto t = make_trainer({"hyp.grad_reg.block_strength=0.5", "hyp.grad_reg.implementation=double-backprop",
                         "hyp.grad_reg.every_nth_block=2"});
  auto params = t->model().parameters();
  auto before = snapshot(*t);
  torch::Tensor x = normalize(t->data().train.images, t->data());
  torch::Tensor y = t->data().train.labels;
  torch::Tensor expected = torch::zeros_like(flat(before));
  for (int64_t b = 0; b < blocks; ++b) {
    torch::Tensor xb = x.slice(0, b * batch, (b + 1) * batch), yb = y.slice(0, b * batch, (b + 1) * batch);
    BlockForward forward = [&] {
      torch::Tensor logits = t->model().forward(xb);
      return ForwardResult{torch::nn::functional::cross_entropy(logits, yb), logits};
    };
    TensorList g = block_gradient(forward, params).grads;
    expected += flat(g) / blocks;
    if (b % every != 0) continue;  // step 0: blocks 0 and 2
    TensorList v;
    for (auto& gi : g) v.push_back(alpha * gi);
    expected += every * lr / 4 * flat(exact_hessian_vector_product(forward, params, v)) / blocks;
  }
  t->train_step();
  torch::Tensor moved = flat(before) - flat(snapshot(*t));
  EXPECT_LT((moved - expected).norm().item<double>() / expected.norm().item<double>(), 1e-4);
  auto all = make_trainer({"hyp.grad_reg.block_strength=0.5", "hyp.grad_reg.implementation=double-backprop"});
  all->train_step();
  EXPECT_FALSE(torch::allclose(flat(snapshot(*t)), flat(snapshot(*all)))) << "a subset is not all blocks";
}

TEST(Knobs, PerBlockClippingClipsEveryBlockAndCountsThem) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"hyp.batch_clip=0.000001"});
  StepRecord r = t->train_step();
  EXPECT_EQ(r.clipped_blocks, 4);
  EXPECT_LE(r.grad_norm, 1e-6 * (1 + 1e-4));
  auto loose = make_trainer({"hyp.batch_clip=1000"});
  EXPECT_EQ(loose->train_step().clipped_blocks, 0);
}

TEST(Knobs, EmaFollowsItsRecursion) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"hyp.evaluate_ema=true", "hyp.eval_ema_momentum=0.9",
                         "hyp.optim.lr=0.1"});
  auto ema = snapshot(*t);
  for (int s = 0; s < 3; ++s) {
    t->train_step();
    auto now = snapshot(*t);
    for (size_t i = 0; i < ema.size(); ++i) ema[i] = 0.9 * ema[i] + 0.1 * now[i];
  }
  auto state = t->state_dict();
  for (size_t i = 0; i < ema.size(); ++i)
    EXPECT_TRUE(torch::allclose(state.at("ema." + std::to_string(i)), ema[i], 1e-6, 1e-7)) << i;
  // Evaluating with the EMA must not change the live weights.
  auto live = snapshot(*t);
  t->evaluate();
  auto after = snapshot(*t);
  for (size_t i = 0; i < live.size(); ++i) EXPECT_TRUE(torch::equal(live[i], after[i]));
}

TEST(Knobs, LabelSmoothingChangesTheLossAsItsFormulaSays) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"hyp.label_smoothing=0.2"});
  torch::Tensor logp = torch::log_softmax(
      t->model().forward(normalize(t->data().train.images, t->data())), 1).detach();
  torch::Tensor nll = -logp.gather(1, t->data().train.labels.unsqueeze(1)).mean();
  torch::Tensor others = (-logp.sum(1)).mean() - nll;
  // The reference's smoothing: 1 - s on the target, s / (C - 1) on each of the other 9 classes.
  double expected = (0.8 * nll + 0.2 / 9.0 * others).item<double>();
  EXPECT_NEAR(t->train_step().train_loss, expected, 1e-5);
}

TEST(Knobs, TestTimeFlipsChangeTheEvaluation) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto plain = make_trainer({});
  auto flips = make_trainer({"impl.test_time_flips=true"});
  EXPECT_NE(plain->evaluate().loss, flips->evaluate().loss);
}

TEST(Knobs, SwitchToStochasticAfterAStep) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto fb = make_trainer({"hyp.optim.lr=0.1"});
  auto sw = make_trainer({"hyp.optim.lr=0.1", "hyp.train_switch_stochastic=1"});
  StepRecord a1 = fb->train_step(), b1 = sw->train_step();
  EXPECT_EQ(a1.train_loss, b1.train_loss);
  // After the switch an epoch is 4 SGD steps: the weights move differently.
  fb->train_step();
  sw->train_step();
  EXPECT_FALSE(torch::equal(flat(snapshot(*fb)), flat(snapshot(*sw))));
}

TEST(Knobs, StopsAfterKStepsAtFullTrainingAccuracy) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = std::make_unique<Trainer>(
      testing::prepared(config_with({"data.size=64", "hyp.steps=400", "hyp.optim.lr=0.05", "hyp.optim.momentum=0.9",
                   "model.name=simplecnn", "model.width=16", "hyp.stop_at_full_training_accuracy=2",
                   "impl.validate_every_nth_step=100000"})),
      std::make_shared<LocalCommunicator>());
  std::vector<StepRecord> records;
  t->train([&](const StepRecord& r) { records.push_back(r); });
  ASSERT_LT(records.size(), 400u) << "never reached 100% train accuracy";
  EXPECT_EQ(records.back().train_accuracy, 100.0);
  EXPECT_EQ(records[records.size() - 2].train_accuracy, 100.0);
  EXPECT_TRUE(records.back().val_accuracy.has_value());
}

TEST(Knobs, SemiStochasticSgdUsesOneRoundPerEpoch) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto t = make_trainer({"data.augmentations=crop-flip", "data.fixed_augmentations=3",
                         "hyp.train_stochastic=true", "hyp.train_semi_stochastic=true",
                         "hyp.optim.lr=0.1"});
  EXPECT_EQ(t->train_images_per_step(), 256);
  StepRecord r = t->train_step();
  EXPECT_DOUBLE_EQ(r.epoch, 1.0);
  auto fb = make_trainer({"data.augmentations=crop-flip", "data.fixed_augmentations=3"});
  EXPECT_EQ(fb->train_images_per_step(), 3 * 256);
}

// N x fixed augmentation: the same images every step and across runs, and only 3 bytes per
// sample of memory.
TEST(FixedAugmentation, SameImagesEveryStepAndAcrossRuns) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Dataset data = load_dataset({"fashion-mnist", "", 256});
  BlockSourceOptions o;
  o.fixed_rounds = 40;
  o.seed = 5;
  BlockSource a(data, o), b(data, o);
  EXPECT_EQ(a.num_samples(), 40 * 256);
  EXPECT_EQ(a.table_bytes(), 3 * 40 * 256);
  torch::Tensor samples = torch::arange(0, 40 * 256, 37);
  Block first = a.block(samples, 0, 0);
  EXPECT_TRUE(torch::equal(first.inputs, a.block(samples, 99, 3).inputs));
  EXPECT_TRUE(torch::equal(first.inputs, b.block(samples, 7, 1).inputs));
  // Rounds differ: sample s and s + n show the same image under different crops.
  torch::Tensor r0 = a.block(torch::arange(0, 64), 0, 0).inputs;
  torch::Tensor r1 = a.block(torch::arange(256, 256 + 64), 0, 0).inputs;
  EXPECT_FALSE(torch::equal(r0, r1));
  EXPECT_TRUE(torch::equal(a.block(torch::arange(0, 64), 0, 0).labels,
                           a.block(torch::arange(256, 256 + 64), 0, 0).labels));
  o.seed = 6;
  EXPECT_FALSE(torch::equal(first.inputs, BlockSource(data, o).block(samples, 0, 0).inputs));
}

TEST(FixedAugmentation, NoAugmentationMeansNoRandomness) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Dataset data = load_dataset({"fashion-mnist", "", 256});
  BlockSourceOptions o;
  o.augment = false;
  BlockSource s(data, o);
  torch::Tensor idx = torch::arange(64);
  EXPECT_TRUE(torch::equal(s.block(idx, 0, 0).inputs, s.block(idx, 5, 9).inputs));
  o.augment = true;
  BlockSource live(data, o);
  EXPECT_FALSE(torch::equal(live.block(idx, 0, 0).inputs, live.block(idx, 1, 0).inputs));
}

}  // namespace
}  // namespace fullbatch
