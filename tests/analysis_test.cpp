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
    const double weight = static_cast<double>(objective.block_images(b)) / objective.images();
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

TEST(Curvature, LanczosTopEigenvalueMatchesTheDenseHessianOfATinyNetwork) {
  for (bool train_bn : {true, false}) {
    SCOPED_TRACE(train_bn ? "BatchNorm train" : "BatchNorm eval");
    const Dataset data = tiny_data(40);
    auto net = tiny_net();
    LocalCommunicator comm;
    TrainingObjective objective(*net, data, tiny_options(train_bn), comm);
    const torch::Tensor h = dense_hessian(objective);
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
}

TEST(Curvature, ObjectiveLeavesBuffersAndModeUntouched) {
  const Dataset data = tiny_data(40);
  auto net = tiny_net();
  net->train();
  const torch::Tensor mean_before = net->bn->running_mean.clone();
  LocalCommunicator comm;
  TrainingObjective objective(*net, data, tiny_options(true), comm);
  measure_curvature(objective, CurvatureOptions{});
  EXPECT_TRUE(torch::equal(net->bn->running_mean, mean_before));
  EXPECT_TRUE(net->is_training());
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
  compute_interpolation(objective, a, b, linspace(0, 1, 5), nullptr, table);
  const auto rows = read_table(dir / "i.jsonl");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0]["loss"].get<double>(), loss_a);
  EXPECT_EQ(rows[4]["loss"].get<double>(), loss_b);
  EXPECT_EQ(objective.value(false).loss, loss_a);  // left at the first state
  EXPECT_TRUE(torch::equal(a_net->bn->running_var, a.at("bn.running_var")));
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
  EXPECT_NEAR(s.noise_scale, 0.0, 1e-3);
  EXPECT_GT(s.signal_to_noise, 1e3);
  ASSERT_TRUE(s.momentum_cosine.has_value());
  EXPECT_NEAR(*s.momentum_cosine, 1.0, 1e-6);  // float32 G against its float64 copy
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
  }
  const auto a = plain.state_dict(), b = probed.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a)
    if (k != "trainer.elapsed_s") EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
}

}  // namespace
}  // namespace fullbatch
