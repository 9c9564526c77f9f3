// model.name=torchscript (models/torchscript.h): a scripted copy of a zoo model (Python's
// tests/parity/models.py, scripted by scripts/script_model.py with the zoo model's weights) trains
// bit-identically to the zoo model with the gradient regularizer; a scripted model without
// BatchNorm gives the exact Hessian-vector product the finite differences converge to; a killed
// and resumed run equals an uninterrupted one; bad files and misfitting modules are one-line
// errors (those modules are built here with libtorch's own TorchScript compiler, no Python).
#include "fullbatch/models/torchscript.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::TempDir;

#define REQUIRE_PYTHON_TORCH() \
  FULLBATCH_REQUIRE_PYTHON_TORCH("scripts/script_model.py cannot script the zoo model's copy")

const std::string kSource = FULLBATCH_SOURCE_DIR;

// Writes the scripted copy of zoo model `name` (tests/parity/models.py, 1 channel, 10 classes)
// holding `zoo`'s weights and buffers to dir/<name>.ts.
std::string scripted_copy(const TempDir& dir, const std::string& name, int64_t width,
                          const torch::nn::Module& zoo) {
  const std::string weights = dir / (name + "-weights.pt"), out = dir / (name + ".ts");
  save_weights(zoo, weights);
  std::string log;
  const int rc = testing::run_command(
      "/usr/bin/python3 " + kSource + "/scripts/script_model.py " + kSource +
          "/tests/parity/models.py:build name=" + name + " width=" + std::to_string(width) +
          " in_channels=1 num_classes=10 --weights " + weights + " --out " + out,
      &log);
  EXPECT_EQ(rc, 0) << log;
  return out;
}

Config tiny_config(const std::string& data_dir, std::vector<std::string> extra) {
  std::vector<std::string> o = {
      "data.name=fashion-mnist", "data.path=" + data_dir, "data.batch_size=16",
      "model.width=4",           "hyp.steps=3",           "hyp.warmup=1",
      "impl.threads=1",          "impl.progress=false",   "impl.device=cpu"};
  o.insert(o.end(), extra.begin(), extra.end());
  return resolve_config("gradreg", {}, o);
}

void expect_same_state(torch::nn::Module& a, torch::nn::Module& b) {
  const auto sa = state_dict(a), sb = state_dict(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) {
    ASSERT_TRUE(sb.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, sb.at(name)))
        << name << " differs by " << (t - sb.at(name)).abs().max().item<double>();
  }
}

// The gradreg preset (full batch, blocks, clipping, the regularizer) for 3 steps on resnet20
// (BatchNorm: running statistics and num_batches_tracked must follow too), once per
// implementation of the regularizer.
TEST(TorchScript, ScriptedCopyTrainsBitIdenticallyToTheZooModel) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  testing::write_tiny_idx_dataset(dir.path(), 64, 16);
  for (const std::string impl : {"forward-differences", "central-differences", "double-backprop"}) {
    SCOPED_TRACE(impl);
    const std::vector<std::string> common = {"hyp.grad_reg.implementation=" + impl};
    std::vector<std::string> zoo_keys = common;
    zoo_keys.push_back("model.name=resnet20");
    Trainer zoo(testing::prepared(tiny_config(dir.path(), zoo_keys)),
                std::make_shared<LocalCommunicator>());
    const std::string path = scripted_copy(dir, "resnet20", 4, zoo.model());
    std::vector<std::string> ts_keys = common;
    ts_keys.push_back("model.name=torchscript");
    ts_keys.push_back("model.path=" + path);
    Trainer ts(testing::prepared(tiny_config(dir.path(), ts_keys)),
               std::make_shared<LocalCommunicator>());
    expect_same_state(zoo.model(), ts.model());  // the file's weights, not the seed's
    for (int step = 1; step <= 3; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const StepRecord a = zoo.train_step(), b = ts.train_step();
      EXPECT_EQ(a.train_loss, b.train_loss);
      EXPECT_EQ(a.grad_norm, b.grad_norm);
    }
    expect_same_state(zoo.model(), ts.model());
  }
}

std::vector<torch::Tensor> gradient(Classifier& model, const torch::Tensor& x,
                                    const torch::Tensor& y, bool create_graph) {
  auto loss = torch::nn::functional::cross_entropy(model.forward(x), y);
  return torch::autograd::grad({loss}, model.parameters(), {}, create_graph, create_graph);
}

// simplecnn has no BatchNorm, so the loss of a fixed batch is a function of the weights alone and
// its Hessian-vector product is well defined. In float64 the central differences
// (g(w + e v) - g(w - e v)) / 2e approach double backprop's exact H v as O(e^2), as long as no
// ReLU's input changes sign between w - e v and w + e v (the gradient jumps there): at e = 1e-2
// some of the 25,000 ReLU inputs do (the error is O(1)), at 1e-6 and 1e-7 none does.
TEST(TorchScript, DoubleBackpropGivesTheFiniteDifferenceLimitOfTheHvp) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  ModelSpec spec;
  spec.name = "simplecnn", spec.width = 4, spec.in_channels = 1, spec.num_classes = 10;
  ModelPtr zoo = make_model(spec, 7);
  ModelPtr ts = load_torchscript_model(scripted_copy(dir, "simplecnn", 4, *zoo));
  zoo->to(torch::kFloat64);
  ts->to(torch::kFloat64);
  torch::manual_seed(3);
  const auto x = torch::randn({8, 1, 28, 28}, torch::kFloat64);
  const auto y = torch::randint(0, 10, {8});
  auto params = ts->parameters();
  std::vector<torch::Tensor> v;
  for (const auto& p : params) v.push_back(torch::randn_like(p));

  auto hvp = [&](Classifier& model) {
    auto g = gradient(model, x, y, /*create_graph=*/true);
    torch::Tensor gv = torch::zeros({}, torch::kFloat64);
    for (size_t i = 0; i < g.size(); ++i) gv = gv + (g[i] * v[i]).sum();
    return torch::autograd::grad({gv}, model.parameters());
  };
  const auto exact = hvp(*ts);
  const auto zoo_exact = hvp(*zoo);
  double norm = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    EXPECT_TRUE(torch::equal(exact[i], zoo_exact[i])) << "parameter " << i;
    norm += exact[i].pow(2).sum().item<double>();
  }
  norm = std::sqrt(norm);
  ASSERT_GT(norm, 0.0);

  auto central_error = [&](double e) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> saved;
    for (auto& p : params) saved.push_back(p.detach().clone());
    auto gradient_at = [&](double sign) {
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i] + sign * e * v[i]);
      torch::AutoGradMode enable(true);
      return gradient(*ts, x, y, false);
    };
    const auto plus = gradient_at(1), minus = gradient_at(-1);
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
    double err = 0;
    for (size_t i = 0; i < params.size(); ++i)
      err += ((plus[i] - minus[i]) / (2 * e) - exact[i]).pow(2).sum().item<double>();
    return std::sqrt(err) / norm;
  };
  const double coarse = central_error(1e-2);
  EXPECT_GT(coarse, 1e-3) << "a coarse difference is no HVP: the comparison can fail";
  EXPECT_LT(central_error(1e-6), 1e-6) << "coarse " << coarse;
  EXPECT_LT(central_error(1e-7), 1e-6) << "coarse " << coarse;
}

// ---- kill -9 and resume ----

TEST(TorchScript, KilledAndResumedRunIsBitIdentical) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  testing::write_tiny_idx_dataset(dir.path(), 64, 16);
  ModelSpec spec;
  spec.name = "resnet20", spec.width = 4, spec.in_channels = 1, spec.num_classes = 10;
  const std::string path = scripted_copy(dir, "resnet20", 4, *make_model(spec, 5));
  const std::vector<std::string> args = {"--preset",
                                         "gradreg",
                                         "data.name=fashion-mnist",
                                         "data.path=" + dir.path(),
                                         "data.batch_size=16",
                                         "model.name=torchscript",
                                         "model.path=" + path,
                                         "hyp.steps=6",
                                         "hyp.warmup=2",
                                         "hyp.evaluate_ema=true",
                                         "impl.threads=1",
                                         "impl.progress=false",
                                         "impl.device=cpu",
                                         "impl.validate_every_nth_step=3",
                                         "impl.checkpoint.save_every_nth_step=1"};
  auto cli = [&](std::vector<std::string> head) {
    head.insert(head.end(), args.begin(), args.end());
    return head;
  };
  ASSERT_EQ(testing::wait_exit(testing::spawn_cli(cli({"train", "--quiet", "--out", dir / "ref"}),
                                                  dir / "ref.log")),
            0)
      << testing::read_text(dir / "ref.log");
  const std::string run = dir / "run";
  testing::kill_after_lines(
      testing::spawn_cli(cli({"train", "--quiet", "--out", run}), dir / "1.log"),
      run + "/metrics.jsonl", 2);
  ASSERT_EQ(
      testing::wait_exit(testing::spawn_cli({"train", "--quiet", "--resume", run}, dir / "2.log")),
      0)
      << testing::read_text(dir / "1.log") << testing::read_text(dir / "2.log");
  EXPECT_EQ(testing::results_of(dir / "ref/metrics.jsonl"),
            testing::results_of(run + "/metrics.jsonl"));
  auto a = unpickle_state_dict(read_file(dir / "ref/model.pt"), "reference");
  auto b = unpickle_state_dict(read_file(run + "/model.pt"), "resumed");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b[name])) << name;
  }
  // The run's weights carry the module's own names (Python's state_dict).
  EXPECT_TRUE(a.count("layer3.2.bn2.num_batches_tracked"));
}

// ---- bad files: one line naming the file (modules compiled by libtorch, no Python) ----

// A module whose forward is `body` (TorchScript source), with parameter w of `w_shape` (none
// when empty), saved to `path`.
void save_module(const std::string& path, const std::vector<int64_t>& w_shape,
                 const std::string& body) {
  torch::jit::Module m("Custom");
  if (!w_shape.empty()) m.register_parameter("w", torch::randn(w_shape).requires_grad_(), false);
  m.define("def forward(self, x):\n    return " + body + "\n");
  m.save(path);
}

std::string trainer_error(const std::string& data_dir, const std::string& model_path) {
  try {
    Trainer t(testing::prepared(
                  tiny_config(data_dir, {"model.name=torchscript", "model.path=" + model_path})),
              std::make_shared<LocalCommunicator>());
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted " << model_path;
  return "";
}

void expect_one_line(const std::string& msg, const std::vector<std::string>& parts) {
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  for (const auto& part : parts)
    EXPECT_NE(msg.find(part), std::string::npos) << part << " in: " << msg;
}

TEST(TorchScript, BadFilesAreOneLineErrorsNamingThem) {
  TempDir dir;
  testing::write_tiny_idx_dataset(dir.path(), 32, 16);
  expect_one_line(trainer_error(dir.path(), dir / "missing.ts"),
                  {dir / "missing.ts", "no such file"});
  expect_one_line(trainer_error(dir.path(), ""), {"model.path", "TorchScript"});

  // A state dict (what `train` writes as model.pt) is not a module.
  ModelSpec spec;
  spec.name = "simplecnn", spec.width = 4, spec.in_channels = 1;
  save_weights(*make_model(spec, 0), dir / "state.pt");
  expect_one_line(trainer_error(dir.path(), dir / "state.pt"),
                  {dir / "state.pt", "not a TorchScript module"});
  { std::ofstream(dir / "text.ts") << "hello"; }
  expect_one_line(trainer_error(dir.path(), dir / "text.ts"),
                  {dir / "text.ts", "not a TorchScript module"});

  save_module(dir / "empty.ts", {}, "x.flatten(1)");
  expect_one_line(trainer_error(dir.path(), dir / "empty.ts"),
                  {dir / "empty.ts", "no trainable parameters"});

  // Fashion-MNIST is [1, 28, 28] with 10 classes.
  save_module(dir / "rgb.ts", {4, 3, 3, 3},
              "torch.conv2d(x, self.w).mean(dim=[2, 3]).repeat(1, 3)[:, :10]");
  expect_one_line(trainer_error(dir.path(), dir / "rgb.ts"),
                  {dir / "rgb.ts", "[1, 1, 28, 28]", "[4, 3, 3, 3]"});
  save_module(dir / "seven.ts", {7, 784}, "torch.matmul(x.flatten(1), self.w.t())");
  expect_one_line(trainer_error(dir.path(), dir / "seven.ts"),
                  {dir / "seven.ts", "[1, 1, 28, 28]", "[1, 7]", "10 classes", "[1, 10]"});
  save_module(dir / "tuple.ts", {10, 784}, "(torch.matmul(x.flatten(1), self.w.t()), x)");
  expect_one_line(trainer_error(dir.path(), dir / "tuple.ts"), {dir / "tuple.ts", "not a tensor"});

  // A fitting module trains: its own weights are the start, whatever the seed.
  save_module(dir / "linear.ts", {10, 784}, "torch.matmul(x.flatten(1), self.w.t())");
  torch::Tensor first;
  for (const std::string seed : {"1", "2"}) {
    Trainer t(testing::prepared(tiny_config(
                  dir.path(),
                  {"model.name=torchscript", "model.path=" + dir / "linear.ts", "seed=" + seed,
                   "hyp.warmup=0", "hyp.grad_reg.implementation=double-backprop"})),
              std::make_shared<LocalCommunicator>());
    auto w = t.model().named_parameters()["w"].detach().clone();
    if (!first.defined()) first = w;
    EXPECT_TRUE(torch::equal(first, w));
    const StepRecord r = t.train_step();
    EXPECT_TRUE(std::isfinite(r.train_loss));
    EXPECT_FALSE(torch::equal(first, t.model().named_parameters()["w"]));
  }
}

}  // namespace
}  // namespace fullbatch
