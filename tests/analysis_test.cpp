// The analyses against independent computations: Lanczos and Hutchinson on matrices with known
// spectra and on a tiny network's dense Hessian built by autograd, landscapes and interpolation
// at their anchor points, a killed-and-resumed landscape file, the finite-difference error's
// behaviour in eps, and curvature during training leaving the run untouched.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "fullbatch/analysis/curvature.h"
#include "fullbatch/analysis/landscape.h"
#include "fullbatch/analysis/objective.h"
#include "fullbatch/analysis/options.h"
#include "fullbatch/analysis/probes.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/run/analyze.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

// A symmetric matrix with the given spectrum, rotated by a fixed random orthogonal matrix.
torch::Tensor matrix_with_spectrum(const std::vector<double>& spectrum) {
  const int64_t n = static_cast<int64_t>(spectrum.size());
  torch::manual_seed(3);
  auto [q, r] = torch::linalg_qr(torch::randn({n, n}, torch::kFloat64));
  return q.mm(torch::diag(torch::tensor(spectrum, torch::kFloat64))).mm(q.t());
}

LinearOperator matrix_operator(const torch::Tensor& a) {
  return [a](const torch::Tensor& v) { return a.mv(v); };
}

TEST(Lanczos, TopEigenvaluesOfAKnownSpectrum) {
  std::vector<double> spectrum;
  for (int i = 0; i < 60; ++i) spectrum.push_back(1.0 / (i + 1));
  spectrum[0] = 10, spectrum[1] = 7, spectrum[2] = 5, spectrum[59] = -3;  // an indefinite "Hessian"
  const torch::Tensor a = matrix_with_spectrum(spectrum);
  LanczosOptions o;
  o.eigenvalues = 3;
  o.max_iterations = 40;
  o.tolerance = 1e-10;
  const EigenResult r = lanczos_top_eigenvalues(matrix_operator(a), 60, torch::kCPU, o);
  ASSERT_EQ(r.eigenvalues.size(), 3u);
  EXPECT_NEAR(r.eigenvalues[0], 10.0, 1e-8);
  EXPECT_NEAR(r.eigenvalues[1], 7.0, 1e-8);
  EXPECT_NEAR(r.eigenvalues[2], 5.0, 1e-8);
  EXPECT_TRUE(r.converged);
  EXPECT_LE(r.products, 40);
  // The residual bound is honest: every reported residual bounds the true eigenvalue error.
  for (size_t i = 0; i < 3; ++i) EXPECT_LE(std::abs(r.eigenvalues[i] - spectrum[i]), r.residuals[i] + 1e-9);
}

TEST(Lanczos, StopsEarlyAtTheTolerance) {
  std::vector<double> spectrum(50, 0.01);
  spectrum[0] = 100.0;  // one dominant direction: found in very few products
  LanczosOptions o;
  o.max_iterations = 50;
  o.tolerance = 1e-6;
  const EigenResult r = lanczos_top_eigenvalues(matrix_operator(matrix_with_spectrum(spectrum)), 50, torch::kCPU, o);
  EXPECT_NEAR(r.eigenvalues[0], 100.0, 1e-4);
  EXPECT_LT(r.products, 50);
}

// Many distinct eigenvalues (no small invariant subspace to stop on by accident): Lanczos stops
// at the first iteration whose residual meets the tolerance, well before the dimension, and one
// product fewer is not yet converged.
TEST(Lanczos, StopsEarlyAtTheToleranceOnASpreadSpectrum) {
  std::vector<double> spectrum;
  for (int i = 0; i < 120; ++i) spectrum.push_back(static_cast<double>(i) / 120.0);  // 0 ... 0.99
  spectrum[0] = 20.0;
  const torch::Tensor a = matrix_with_spectrum(spectrum);
  LanczosOptions o;
  o.max_iterations = 120;
  o.tolerance = 1e-8;
  const EigenResult r = lanczos_top_eigenvalues(matrix_operator(a), 120, torch::kCPU, o);
  EXPECT_TRUE(r.converged);
  EXPECT_GT(r.products, 2);
  EXPECT_LT(r.products, 60);
  EXPECT_LE(r.residuals[0], 1e-8 * 20.0);
  EXPECT_LE(std::abs(r.eigenvalues[0] - 20.0), r.residuals[0] + 1e-12);
  o.max_iterations = r.products - 1;
  const EigenResult before = lanczos_top_eigenvalues(matrix_operator(a), 120, torch::kCPU, o);
  EXPECT_FALSE(before.converged);
  EXPECT_GT(before.residuals[0], 1e-8 * 20.0);
}

TEST(Hutchinson, ExactOnDiagonalAndUnbiasedOnRotatedMatrices) {
  const torch::Tensor d = torch::diag(torch::linspace(-2, 5, 30, torch::kFloat64));
  const TraceResult diag = hutchinson_trace(matrix_operator(d), 30, torch::kCPU, 3, 0);
  EXPECT_NEAR(diag.trace, d.trace().item<double>(), 1e-12);  // z^T D z = tr D for z in {-1, 1}^n

  std::vector<double> spectrum;
  for (int i = 0; i < 30; ++i) spectrum.push_back(i % 3 == 0 ? 2.0 : -0.5 + 0.1 * i);
  const torch::Tensor a = matrix_with_spectrum(spectrum);
  const TraceResult r = hutchinson_trace(matrix_operator(a), 30, torch::kCPU, 4000, 1);
  EXPECT_EQ(r.products, 4000);
  EXPECT_NEAR(r.trace, a.trace().item<double>(), 4 * r.std_error);
  EXPECT_LT(r.std_error, 0.2);
}

// A small smooth network (tanh), so its Hessian is well defined everywhere.
class TinyNet : public Classifier {
 public:
  TinyNet() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 4));
    bn = register_module("bn", torch::nn::BatchNorm1d(4));
    fc2 = register_module("fc2", torch::nn::Linear(4, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return fc2->forward(torch::tanh(bn->forward(fc1->forward(x.flatten(1)))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

Dataset tiny_data(int64_t n, bool identical = false) {
  Dataset d;
  d.name = "tiny";
  torch::manual_seed(5);
  torch::Tensor images = torch::randint(0, 256, {n, 1, 4, 4}, torch::kLong).to(torch::kUInt8);
  if (identical) images = images[0].unsqueeze(0).expand({n, 1, 4, 4}).contiguous();
  torch::Tensor labels = identical ? torch::zeros({n}, torch::kLong) : torch::randint(0, 3, {n}, torch::kLong);
  d.train = {images, labels};
  d.test = {images.clone(), labels.clone()};
  d.num_classes = 3;
  d.mean = {0.5};
  d.std = {0.25};
  return d;
}

std::shared_ptr<TinyNet> tiny_net() {
  torch::manual_seed(11);
  auto net = std::make_shared<TinyNet>();
  // Move the BatchNorm buffers away from their defaults so eval and train modes differ.
  torch::NoGradGuard no_grad;
  net->bn->running_mean.uniform_(-0.5, 0.5);
  net->bn->running_var.uniform_(0.5, 2.0);
  return net;
}

ObjectiveOptions tiny_options(bool train_bn) {
  ObjectiveOptions o;
  o.block_size = 16;
  o.batchnorm_train = train_bn;
  return o;
}

// The dense Hessian of the mean block loss, row by row by autograd (independent of the
// Hessian-vector code: one gradient of each gradient coordinate).
torch::Tensor dense_hessian(TrainingObjective& objective) {
  int64_t dim = 0;
  for (const auto& p : objective.params()) dim += p.numel();
  torch::Tensor h = torch::zeros({dim, dim}, torch::kFloat64);
  objective.for_each_block([&](int64_t b, const Block&, const BlockForward& forward) {
    const double weight = 1.0 / static_cast<double>(objective.num_blocks());  // as training
    auto grads = torch::autograd::grad({forward().loss}, objective.params(), {}, true, true);
    std::vector<torch::Tensor> flat;
    for (auto& g : grads) flat.push_back(g.reshape(-1));
    const torch::Tensor g = torch::cat(flat);
    for (int64_t i = 0; i < dim; ++i) {
      auto row = torch::autograd::grad({g[i]}, objective.params(), {}, true, false, true);
      std::vector<torch::Tensor> parts;
      for (size_t k = 0; k < row.size(); ++k)
        parts.push_back(row[k].defined() ? row[k].reshape(-1).to(torch::kFloat64)
                                         : torch::zeros({objective.params()[k].numel()}, torch::kFloat64));
      h[i] += torch::cat(parts) * weight;
    }
  });
  return h;
}

// 40 images in blocks of 16: 16, 16, 8. Training weights the blocks equally (1/B, as the
// reference's accumulation); the objective, and so the Hessian reported, must too. Image weights
// would give another loss here.
TEST(Objective, WeightsBlocksEquallyAsTrainingDoes) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  ASSERT_EQ(objective.num_blocks(), 3);
  std::vector<double> losses, sizes;
  objective.for_each_block([&](int64_t b, const Block& block, const BlockForward&) {
    torch::NoGradGuard no_grad;
    losses.push_back(torch::nn::functional::cross_entropy(net->forward(block.inputs), block.labels)
                         .item<double>());
    sizes.push_back(static_cast<double>(block.labels.size(0)));
  });
  const double equal = (losses[0] + losses[1] + losses[2]) / 3;
  const double by_images =
      (losses[0] * sizes[0] + losses[1] * sizes[1] + losses[2] * sizes[2]) / 40;
  ASSERT_GT(std::abs(equal - by_images), 1e-4);  // the test can tell the two apart
  EXPECT_NEAR(objective.value(false).loss, equal, 1e-6);
  EXPECT_NEAR(objective.value(true).loss, equal, 1e-6);
}

TEST(Curvature, LanczosTopEigenvalueMatchesTheDenseHessianOfATinyNetwork) {
  std::vector<torch::Tensor> hessians;  // train mode, eval mode
  for (bool train_bn : {true, false}) {
    SCOPED_TRACE(train_bn ? "BatchNorm train" : "BatchNorm eval");
    const Dataset data = tiny_data(40);
    auto net = tiny_net();
    LocalCommunicator comm;
    TrainingObjective objective(*net, data, tiny_options(train_bn), comm);
    const torch::Tensor h = dense_hessian(objective);
    hessians.push_back(h);
    EXPECT_LT((h - h.t()).abs().max().item<double>(), 1e-4);
    const torch::Tensor eig = torch::linalg_eigvalsh(0.5 * (h + h.t()), "L");
    CurvatureOptions o;
    o.lanczos.eigenvalues = 2;
    o.lanczos.max_iterations = 40;
    o.lanczos.tolerance = 1e-6;
    o.trace_samples = 3000;
    const Curvature c = measure_curvature(objective, o);
    const int64_t n = eig.size(0);
    const double top = eig[n - 1].item<double>(), second = eig[n - 2].item<double>();
    EXPECT_NEAR(c.top.eigenvalues[0], top, 1e-4 * std::abs(top) + 1e-5);
    EXPECT_NEAR(c.top.eigenvalues[1], second, 1e-3 * std::abs(top) + 1e-5);
    ASSERT_TRUE(c.trace.has_value());
    EXPECT_NEAR(c.trace->trace, h.trace().item<double>(), 4 * c.trace->std_error + 1e-6);
  }
  // The two modes' Hessians differ on this network, so an analysis in the wrong mode cannot pass
  // the comparison above.
  const double diff = (hessians[0] - hessians[1]).norm().item<double>();
  EXPECT_GT(diff, 0.1 * hessians[0].norm().item<double>());
}

// Every combination of the model's mode on entry and the analysis' BatchNorm mode: buffers (mean,
// variance, batch counter) and mode come back bit for bit.
TEST(Curvature, ObjectiveLeavesBuffersAndModeUntouched) {
  const Dataset data = tiny_data(40);
  for (bool model_training : {true, false})
    for (bool analysis_train_bn : {true, false}) {
      SCOPED_TRACE(std::string("model ") + (model_training ? "train" : "eval") + ", analysis " +
                   (analysis_train_bn ? "train" : "eval"));
      auto net = tiny_net();
      net->train(model_training);
      const torch::Tensor mean = net->bn->running_mean.clone(), var = net->bn->running_var.clone();
      const torch::Tensor count = net->bn->num_batches_tracked.clone();
      LocalCommunicator comm;
      TrainingObjective objective(*net, data, tiny_options(analysis_train_bn), comm);
      measure_curvature(objective, CurvatureOptions{});
      gradient_statistics(objective);
      EXPECT_TRUE(torch::equal(net->bn->running_mean, mean));
      EXPECT_TRUE(torch::equal(net->bn->running_var, var));
      EXPECT_TRUE(torch::equal(net->bn->num_batches_tracked, count));
      EXPECT_EQ(net->is_training(), model_training);
    }
}

TEST(Landscape, OriginIsTheCheckpointsLossAndResumeGivesTheSameFile) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  const double loss = objective.value(false).loss;
  DirectionOptions d;
  d.seed = 4;
  const TensorList d1 = random_direction(objective.params(), d, 0);
  const TensorList d2 = random_direction(objective.params(), d, 1);
  // Filter normalization: every filter of d has the norm of the parameter's filter; 1-D zero.
  for (size_t i = 0; i < d1.size(); ++i) {
    if (d1[i].dim() <= 1) {
      EXPECT_EQ(d1[i].abs().sum().item<double>(), 0.0);
      continue;
    }
    for (int64_t f = 0; f < d1[i].size(0); ++f)
      EXPECT_NEAR(d1[i][f].norm().item<double>(), objective.params()[i][f].norm().item<double>(), 1e-5);
  }
  Grid grid{linspace(-1, 1, 5), linspace(-1, 1, 3)};
  testing::TempDir dir;
  const std::string whole = dir / "whole.jsonl", cut = dir / "cut.jsonl";
  const nlohmann::json header = {{"kind", "test"}};
  {
    ResumableTable table(whole, header, comm, torch::kCPU);
    compute_landscape(objective, grid, d1, d2, FullLossTerms{}, table);
  }
  const auto rows = read_table(whole);
  ASSERT_EQ(rows.size(), 15u);
  EXPECT_EQ(rows[7]["x"].get<double>(), 0.0);  // the centre point
  EXPECT_EQ(rows[7]["y"].get<double>(), 0.0);
  EXPECT_EQ(rows[7]["loss"].get<double>(), loss);
  EXPECT_EQ(objective.value(false).loss, loss);  // parameters restored

  // "Killed" after 6 points, in the middle of writing the 7th line.
  {
    ResumableTable table(cut, header, comm, torch::kCPU);
    compute_landscape(objective, grid, d1, d2, FullLossTerms{}, table);
  }
  std::string text = read_file(cut);
  size_t pos = 0;
  for (int line = 0; line < 7; ++line) pos = text.find('\n', pos) + 1;
  std::ofstream(cut, std::ios::trunc) << text.substr(0, pos) + text.substr(pos, 10);
  {
    ResumableTable table(cut, header, comm, torch::kCPU);
    EXPECT_EQ(table.done(), 6);
    compute_landscape(objective, grid, d1, d2, FullLossTerms{}, table);
  }
  EXPECT_EQ(read_file(cut), read_file(whole));
  // Other settings in the same file are refused, not mixed.
  EXPECT_THROW(ResumableTable(cut, nlohmann::json{{"kind", "other"}}, comm, torch::kCPU), UserError);
}

TEST(Landscape, FullLossAddsWeightDecayAndPenaltyTerms) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  testing::TempDir dir;
  ResumableTable table(dir / "f.jsonl", nlohmann::json{{"kind", "f"}}, comm, torch::kCPU);
  FullLossTerms terms{true, 0.01, 0.4, 0.5};
  compute_landscape(objective, Grid{{0.0}, {}}, {}, {}, terms, table);
  const auto rows = read_table(dir / "f.jsonl");
  // Independently: the blocks' gradients one by one.
  double sq = 0;
  objective.for_each_block([&](int64_t, const Block&, const BlockForward& forward) {
    const double n = global_norm(block_gradient(forward, objective.params()).grads).item<double>();
    sq += n * n;
  });
  const double theta = global_norm(objective.params()).item<double>();
  const double expected = objective.value(false).loss + 0.005 * theta * theta + 0.1 * 0.5 * sq / objective.num_blocks();
  EXPECT_NEAR(rows[0]["full_loss"].get<double>(), expected, 1e-9 * expected);
}

// The reference reads the restored optimizer's lr: at a checkpoint in warm-up that is base * s / W,
// not the base lr the config names.
TEST(Landscape, FullLossUsesTheScheduledLrOfTheCheckpointsStep) {
  Config config;
  for (const char* o :
       {"hyp.optim.lr=0.4", "hyp.warmup=10", "hyp.steps=100", "hyp.optim.weight_decay=0.01",
        "hyp.grad_reg.block_strength=0.5", "analysis.landscape.full_loss=true"})
    apply_override(config, o);
  const FullLossTerms at5 = full_loss_terms(config, 5);
  EXPECT_TRUE(at5.on);
  EXPECT_NEAR(at5.lr, 0.4 * 5 / 10, 1e-15);
  EXPECT_EQ(at5.weight_decay, 0.01);
  EXPECT_EQ(at5.alpha, 0.5);
  EXPECT_EQ(full_loss_terms(config, 0).lr, 0.0);
  EXPECT_NEAR(full_loss_terms(config, 10).lr, 0.4, 1e-15);
}

TEST(Interpolation, EndpointsReproduceEachCheckpoint) {
  const Dataset data = tiny_data(40);
  auto a_net = tiny_net();
  torch::manual_seed(99);
  auto b_net = std::make_shared<TinyNet>();
  LocalCommunicator comm;
  TrainingObjective b_objective(*b_net, data, tiny_options(false), comm);
  const double loss_b = b_objective.value(false).loss;
  TrainingObjective objective(*a_net, data, tiny_options(false), comm);
  const double loss_a = objective.value(false).loss;
  const ModelState a = model_state(*a_net), b = model_state(*b_net);
  testing::TempDir dir;
  ResumableTable table(dir / "i.jsonl", nlohmann::json{{"kind", "i"}}, comm, torch::kCPU);
  compute_interpolation(objective, a, b, linspace(0, 1, 5), false, nullptr, table);
  const auto rows = read_table(dir / "i.jsonl");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0]["loss"].get<double>(), loss_a);
  EXPECT_EQ(rows[4]["loss"].get<double>(), loss_b);
  EXPECT_EQ(objective.value(false).loss, loss_a);  // left at the first state
  EXPECT_TRUE(torch::equal(a_net->bn->running_var, a.at("bn.running_var")));
}

// recompute_batchnorm: the running statistics become the equal-weight average over blocks of each
// block's batch mean and unbiased variance of the BatchNorm's input, computed here by hand.
TEST(Interpolation, RecomputedBatchNormStatisticsAreTheBlockAverage) {
  const Dataset data = tiny_data(48);  // three blocks of 16
  auto net = tiny_net();
  net->eval();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  torch::Tensor mean = torch::zeros({4}, torch::kFloat64), var = torch::zeros({4}, torch::kFloat64);
  objective.for_each_block([&](int64_t, const Block& block, const BlockForward&) {
    torch::NoGradGuard no_grad;
    const torch::Tensor h = net->fc1->forward(block.inputs.flatten(1)).to(torch::kFloat64);
    mean += h.mean(0) / 3;
    var += h.var(0, /*unbiased=*/true) / 3;
  });
  const double stale_loss = objective.value(false).loss;
  objective.recompute_batchnorm_statistics();
  EXPECT_TRUE(torch::allclose(net->bn->running_mean.to(torch::kFloat64), mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(net->bn->running_var.to(torch::kFloat64), var, 1e-5, 1e-6));
  EXPECT_FALSE(net->is_training());
  ASSERT_TRUE(net->bn->options.momentum().has_value());
  EXPECT_EQ(*net->bn->options.momentum(), 0.1);
  EXPECT_NE(objective.value(false).loss, stale_loss);  // tiny_net's buffers were not the data's

  // In an interpolation: every point uses recomputed statistics, the model ends at state a.
  auto a_net = tiny_net();
  TrainingObjective a_objective(*a_net, data, tiny_options(false), comm);
  const ModelState a = model_state(*a_net);
  testing::TempDir dir;
  ResumableTable table(dir / "r.jsonl", nlohmann::json{{"kind", "r"}}, comm, torch::kCPU);
  compute_interpolation(a_objective, a, a, {0.0}, true, nullptr, table);
  EXPECT_NEAR(read_table(dir / "r.jsonl")[0]["loss"].get<double>(), objective.value(false).loss,
              1e-6);
  EXPECT_TRUE(torch::equal(a_net->bn->running_mean, a.at("bn.running_mean")));
}

// analysis.objective=loss+wd: the loss gains wd/2 |theta|^2, the gradient wd theta, H v gains wd v.
TEST(Objective, WeightDecayTermsAddToLossGradientAndHessian) {
  const Dataset data = tiny_data(32);
  auto net = tiny_net();
  LocalCommunicator comm;
  ObjectiveOptions with = tiny_options(false);
  with.with_weight_decay = true;
  with.weight_decay_of.weight_decay = 0.1;
  TrainingObjective plain(*net, data, tiny_options(false), comm), decayed(*net, data, with, comm);
  const ObjectiveValue p = plain.value(true), d = decayed.value(true);
  const double theta = global_norm(plain.params()).item<double>();
  EXPECT_NEAR(d.loss, p.loss + 0.05 * theta * theta, 1e-6);
  TensorList v;
  for (const auto& q : plain.params()) v.push_back(torch::randn_like(q));
  const TensorList hp = plain.hessian_vector_product(v), hd = decayed.hessian_vector_product(v);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_TRUE(
        torch::allclose(d.gradient[i], p.gradient[i] + 0.1 * plain.params()[i], 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(hd[i], hp[i] + 0.1 * v[i], 1e-5, 1e-6));
  }
}

TEST(FiniteDifferenceError, ShrinksWithEpsOnASmoothModelAndCentralBeatsForward) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(true), comm);
  const auto errors = finite_difference_error(objective, {1e-1, 1e-2});
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_LT(errors[1].forward_mean, errors[0].forward_mean);  // O(eps)
  EXPECT_LT(errors[0].central_mean, errors[0].forward_mean);  // O(eps^2)
  EXPECT_LE(errors[0].forward_mean, errors[0].forward_max);
  EXPECT_GT(errors[1].forward_mean, 0.0);
}

TEST(GradientStatistics, IdenticalBlocksHaveNoNoiseAndMomentumAlongGIsCosineOne) {
  const Dataset data = tiny_data(64, /*identical=*/true);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  const TensorList g = objective.value(true).gradient;
  const GradientStatistics s = gradient_statistics(objective, g);
  EXPECT_NEAR(s.gradient_norm, global_norm(g).item<double>(), 1e-6);
  ASSERT_EQ(s.block_gradient_norms.size(), 4u);
  for (double n : s.block_gradient_norms) EXPECT_NEAR(n, s.gradient_norm, 1e-5);
  ASSERT_TRUE(s.noise_scale.has_value());
  EXPECT_NEAR(*s.noise_scale, 0.0, 1e-3);
  EXPECT_GT(s.signal_to_noise, 1e3);
  ASSERT_TRUE(s.momentum_cosine.has_value());
  EXPECT_NEAR(*s.momentum_cosine, 1.0, 1e-6);  // float32 G against its float64 copy
}

// Logits equal to a parameter vector b whatever the image: with every label 0 the loss is
// logsumexp(b) - b_0 in closed form.
class BiasOnly : public Classifier {
 public:
  BiasOnly() { b = register_parameter("b", torch::zeros({3})); }
  torch::Tensor forward(const torch::Tensor& x) override {
    return b.unsqueeze(0).expand({x.size(0), 3});
  }
  torch::Tensor b;
};

// Along d = (-2, 0, 0) from b = 0 the loss is log(exp(-s) + 2) + s at s = 2 t: it passes 2.0 first
// at the point whose index the reference's perturb2threshold returns (its counter).
TEST(Flatness, IsTheIndexOfTheFirstPointAboveTheThresholdAsTheReferences) {
  const Dataset data = tiny_data(32, /*identical=*/true);  // every label 0
  BiasOnly net;
  LocalCommunicator comm;
  TrainingObjective objective(net, data, tiny_options(false), comm);
  const TensorList d = {torch::tensor({-2.0, 0.0, 0.0}, torch::kFloat32)};
  const double increment = 0.25, threshold = 2.0;
  auto closed_form = [&](int64_t k) {
    const double s = 2.0 * increment * static_cast<double>(k);
    return std::log(std::exp(-s) + 2.0) + s;
  };
  int64_t expected = 0;
  while (closed_form(expected) <= threshold) ++expected;
  ASSERT_EQ(expected, 3);  // losses 1.099, 1.458, 1.862, 2.299
  const Flatness f = empirical_flatness(objective, d, threshold, increment, 100);
  EXPECT_TRUE(f.exceeded);
  EXPECT_EQ(f.steps, expected);
  EXPECT_NEAR(f.loss, std::log(3.0), 1e-6);
  EXPECT_NEAR(f.loss_at_end, closed_form(expected), 1e-5);
  EXPECT_NEAR(f.reference_value, 2.0 * expected, 1e-6);  // ||d|| k
  EXPECT_NEAR(f.distance, increment * 2.0 * expected, 1e-6);
  EXPECT_TRUE(torch::equal(net.b, torch::zeros({3})));  // restored
  // The threshold below the loss at theta: index 0; the cap reached first: k = max_steps.
  EXPECT_EQ(empirical_flatness(objective, d, 1.0, increment, 100).steps, 0);
  const Flatness capped = empirical_flatness(objective, d, threshold, increment, 2);
  EXPECT_FALSE(capped.exceeded);
  EXPECT_EQ(capped.steps, 2);
}

// Blocks with different gradients: SNR and B_simple against the formulas applied to the stacked
// block gradients by torch's own mean and unbiased std (identical blocks would give noise 0
// whatever the formula).
TEST(GradientStatistics, SnrAndNoiseScaleOfDifferentBlocksMatchAnIndependentComputation) {
  const Dataset data = tiny_data(64);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  std::vector<torch::Tensor> rows;
  objective.for_each_block([&](int64_t, const Block&, const BlockForward& forward) {
    std::vector<torch::Tensor> flat;
    for (const auto& g : block_gradient(forward, objective.params()).grads)
      flat.push_back(g.detach().to(torch::kFloat64).reshape(-1));
    rows.push_back(torch::cat(flat));
  });
  ASSERT_EQ(rows.size(), 4u);
  const torch::Tensor g = torch::stack(rows);  // [blocks, parameters]
  const torch::Tensor mu = g.mean(0);
  const double snr =
      mu.norm().item<double>() / (g.std(0, /*unbiased=*/true).norm().item<double>() + 1e-10);
  const double b = 16, n = 64;
  const double g_small = g.pow(2).sum(1).mean().item<double>(),
               g_big = mu.pow(2).sum().item<double>();
  const double noise = (g_small - g_big) / (1 / b - 1 / n),
               signal = (n * g_big - b * g_small) / (n - b);
  const GradientStatistics s = gradient_statistics(objective);
  EXPECT_NEAR(s.signal_to_noise, snr, 1e-6 * snr);
  EXPECT_GT(s.signal_to_noise, 0.0);
  EXPECT_LT(s.signal_to_noise, 10.0);  // noisy blocks: not the identical-block regime
  ASSERT_TRUE(s.noise_scale.has_value()) << s.noise_scale_reason;
  EXPECT_NEAR(*s.noise_scale, noise / signal, 1e-6 * std::abs(noise / signal));
  EXPECT_GT(std::abs(*s.noise_scale), 1.0);
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_NEAR(s.block_gradient_norms[i], rows[i].norm().item<double>(), 1e-6);
}

// One block: B_simple has no estimator; it is undefined, with the reason, not 0.
TEST(GradientStatistics, NoiseScaleIsUndefinedOnOneBlock) {
  const Dataset data = tiny_data(16);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  const GradientStatistics s = gradient_statistics(objective);
  EXPECT_FALSE(s.noise_scale.has_value());
  EXPECT_NE(s.noise_scale_reason.find("one block"), std::string::npos) << s.noise_scale_reason;
}

TEST(Sharpness, IsTheLossRiseAlongTheNormalizedGradient) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(false), comm);
  const Sharpness s = sam_sharpness(objective, 0.05);
  const ObjectiveValue v = objective.value(true);
  const double n = global_norm(v.gradient).item<double>();
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < v.gradient.size(); ++i) objective.params()[i].add_(v.gradient[i] * (0.05 / n));
  }
  EXPECT_NEAR(s.perturbed_loss, objective.value(false).loss, 1e-6);
  EXPECT_NEAR(s.sharpness, s.perturbed_loss - v.loss, 1e-12);
  EXPECT_GT(s.sharpness, 0.0);  // first order: rho ||g|| > 0
}

TEST(Curvature, RecordingDuringTrainingChangesNothingTheRunComputes) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  Config config;
  apply_preset(config, find_preset("fbclip"));
  for (const char* o : {"data.name=fashion-mnist", "data.size=256", "model.name=resnet18", "model.width=4",
                        "hyp.steps=3", "hyp.warmup=1", "impl.threads=1", "data.test_size=100", "analysis.data_size=128",
                        "analysis.lanczos_iterations=3", "analysis.batchnorm=train"})
    apply_override(config, o);
  Trainer plain(testing::prepared(config), std::make_shared<LocalCommunicator>());
  Trainer probed(testing::prepared(config), std::make_shared<LocalCommunicator>());
  const AnalysisOptions options = analysis_options(config, false);
  LocalCommunicator comm;
  for (int step = 0; step < 3; ++step) {
    plain.train_step();
    probed.train_step();
    const nlohmann::json fields = curvature_fields(probed, options, comm);
    EXPECT_TRUE(std::isfinite(fields["top_eigenvalue"].get<double>()));
    EXPECT_GE(fields["curvature_products"].get<int64_t>(), 1);
    EXPECT_LE(fields["curvature_products"].get<int64_t>(), 3);
    // Three Lanczos iterations on a ResNet: recorded with its convergence flag and residual.
    ASSERT_TRUE(fields["curvature_converged"].is_boolean());
    EXPECT_GE(fields["curvature_residual"].get<double>(), 0.0);
  }
  const auto a = plain.state_dict(), b = probed.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a)
    if (k != "trainer.elapsed_s") EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
}

}  // namespace
}  // namespace fullbatch
