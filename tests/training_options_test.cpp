// The training options added for the reference's other optimizers and for time-to-accuracy:
// hyp.stop_at_val_accuracy, hyp.optim.* / hyp.optim_modification.* keys, and an optimizer that
// evaluates the full gradient twice a step (SAM) checked against an independent computation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/names.h"
#include "fullbatch/common/strings.h"
#include "fullbatch/config/config.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/optim/optimizer.h"
#include "fullbatch/report/report.h"
#include "fullbatch/run/run.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::TempDir;

Config small_config(std::vector<std::string> extra) {
  std::vector<std::string> o = {
      "data.name=fashion-mnist", "data.size=256",     "data.batch_size=64", "model.name=simplecnn",
      "model.width=8",           "hyp.warmup=0",      "impl.threads=2",     "impl.progress=false",
      "impl.device=cpu",         "data.test_size=500"};
  o.insert(o.end(), extra.begin(), extra.end());
  return resolve_config("", {}, o);
}

std::vector<nlohmann::json> metrics_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(StopAtValAccuracy, StopsAtTheFirstEvaluationReachingTheTargetAndRecordsItsCost) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  // A target nine SGD epochs reach on 256 images (measured: 13% after one, 25.2% after nine);
  // evaluated every step.
  Config c = small_config({"hyp.train_stochastic=true", "hyp.optim.lr=0.05", "hyp.steps=30",
                           "impl.validate_every_nth_step=1", "hyp.stop_at_val_accuracy=25"});
  nlohmann::json summary = run_training(c, {dir / "run", false, false});
  const std::vector<nlohmann::json> lines = metrics_of(dir / "run/metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  const nlohmann::json& last = lines.back();
  ASSERT_TRUE(summary["reached_val_accuracy"].get<bool>()) << summary.dump();
  EXPECT_LT(lines.size(), 30u) << "the target should be reached before the planned steps";
  EXPECT_GE(last["val_accuracy"].get<double>(), 25.0);
  EXPECT_EQ(last["reached_val_accuracy"].get<double>(), 25.0);
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    EXPECT_LT(lines[i]["val_accuracy"].get<double>(), 25.0)
        << "line " << i << " already reached it";
  EXPECT_EQ(summary["steps_to_accuracy"].get<int64_t>(), last["step"].get<int64_t>());
  EXPECT_EQ(summary["passes_to_accuracy"].get<double>(), last["epoch"].get<double>());
  EXPECT_EQ(summary["time_to_accuracy_s"].get<double>(), last["time_s"].get<double>());
  EXPECT_EQ(summary["steps"].get<int64_t>(), last["step"].get<int64_t>());
  EXPECT_EQ(summary["status"], "completed");

  // The report lists the cost to the target.
  std::ostringstream console;
  write_report({dir / "run"}, dir / "report", {}, console);
  const std::string md = testing::read_text(dir / "report/report.md");
  const auto at = md.find("## Cost to reach the target accuracy");
  ASSERT_NE(at, std::string::npos) << md;
  EXPECT_NE(md.find("| 25.00 | 1/1 |", at), std::string::npos) << md.substr(at);
  // ... and so do report.json and report.html, from the same numbers.
  const nlohmann::json report =
      nlohmann::json::parse(testing::read_text(dir / "report/report.json"));
  ASSERT_EQ(report["time_to_accuracy"].size(), 1u) << report["time_to_accuracy"].dump();
  const nlohmann::json& cost = report["time_to_accuracy"][0];
  EXPECT_EQ(cost["target"].get<double>(), 25.0);
  EXPECT_EQ(cost["reached"].get<int>(), 1);
  EXPECT_EQ(cost["seeds"].get<int>(), 1);
  EXPECT_EQ(cost["passes_mean"].get<double>(), summary["passes_to_accuracy"].get<double>());
  EXPECT_EQ(cost["time_s_mean"].get<double>(), summary["time_to_accuracy_s"].get<double>());
  EXPECT_TRUE(cost["passes_std"].is_null()) << "one seed has no spread";
  const std::string html = testing::read_text(dir / "report/report.html");
  const auto in_html = html.find("<h2>Cost to reach the target accuracy</h2>");
  ASSERT_NE(in_html, std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">25.00</td><td class=\"num\">1/1</td>", in_html),
            std::string::npos);
}

TEST(StopAtValAccuracy, AnUnreachedTargetRunsToTheEndAndSaysSo) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  Config c = small_config({"hyp.steps=2", "hyp.stop_at_val_accuracy=100"});
  nlohmann::json summary = run_training(c, {dir / "run", false, false});
  EXPECT_FALSE(summary["reached_val_accuracy"].get<bool>());
  EXPECT_FALSE(summary.contains("time_to_accuracy_s"));
  EXPECT_EQ(summary["steps"].get<int64_t>(), 2);
}

TEST(OptimizerKeys, NamesTakeTheReferenceSpellingAndAliases) {
  Config c;
  set_key(c, "hyp.optim.name", "lbfgs");
  EXPECT_EQ(c.hyp.optim.name, "L-BFGS");
  set_key(c, "hyp.optim.name", "Adam");
  EXPECT_EQ(c.hyp.optim.name, "Adam");
  set_key(c, "hyp.optim_modification.name", "sam");
  EXPECT_EQ(c.hyp.optim.modification.name, "SAM");
  try {
    set_key(c, "hyp.optim.name", "rmsprop");
    FAIL();
  } catch (const UserError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("hyp.optim.name"), std::string::npos) << m;
    EXPECT_NE(m.find("L-BFGS"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
}

// hyp.optim.name and hyp.optim_modification.name accept exactly the spellings make_optimizer
// does (one list, common/names.h); gd_agc and agd used to work only when the config was bypassed.
TEST(OptimizerKeys, EverySpellingTheOptimizerTakesWorksThroughTheConfig) {
  Config c;
  apply_override(c, "hyp.optim.name=gd_agc");
  EXPECT_EQ(c.hyp.optim.name, "GD-AGC");
  apply_override(c, "hyp.optim.name=agd");
  EXPECT_EQ(c.hyp.optim.name, "Adaptive Gradient Descent");
  apply_yaml_text(c, "hyp:\n  optim:\n    name: gradient_descent\n", "test.yaml");
  EXPECT_EQ(c.hyp.optim.name, "Gradient Descent");
  for (const Spelling& s : optimizer_spellings()) {
    std::vector<std::string> spellings = s.aliases;
    spellings.push_back(s.name);
    spellings.push_back(lower(s.name));
    for (const std::string& text : spellings) {
      apply_override(c, "hyp.optim.name=" + text);
      EXPECT_EQ(c.hyp.optim.name, s.name) << text;
      EXPECT_EQ(canonical_optimizer_name(text), s.name) << text;
    }
  }
  for (const Spelling& s : modification_spellings())
    for (const std::string& text : s.aliases) {
      apply_override(c, "hyp.optim_modification.name=" + text);
      EXPECT_EQ(c.hyp.optim.modification.name, s.name) << text;
      EXPECT_EQ(canonical_modification_name(text), s.name) << text;
    }
  EXPECT_EQ(names_of(optimizer_spellings()), optimizer_names());
}

// The EMA's momentum has one default, the key's, which is the reference's
// (config/hyp/_default_hyperparams.yaml: eval_ema_momentum: 0.990); EvalOptions used to say 0.995.
TEST(EvalOptions, EmaMomentumDefaultIsTheKeys) {
  EXPECT_EQ(EvalOptions{}.ema_momentum, 0.99);
  EXPECT_EQ(EvalOptions{}.ema_momentum, Config{}.hyp.eval_ema_momentum);
  EXPECT_EQ(trainer_options(Config{}).eval.ema_momentum, EvalOptions{}.ema_momentum);
}

TEST(OptimizerKeys, YamlListsBecomeCommaListsAndAreChecked) {
  Config c;
  apply_yaml_text(c, "hyp:\n  optim:\n    name: Adam\n    betas:\n      - 0.8\n      - 0.99\n",
                  "test");
  EXPECT_EQ(c.hyp.optim.betas, (std::array<double, 2>{0.8, 0.99}));
  // Parsed once, at the key: the optimizer gets the numbers, and config.yaml the same text back.
  EXPECT_EQ(trainer_options(c).optimizer.betas, (std::array<double, 2>{0.8, 0.99}));
  EXPECT_NE(to_yaml(c).find("betas: 0.8,0.99"), std::string::npos) << to_yaml(c);
  set_key(c, "hyp.optim.fista_mod", "1,0.5,4");
  EXPECT_EQ(trainer_options(c).optimizer.fista_mod, (std::array<double, 3>{1, 0.5, 4}));
  EXPECT_THROW(apply_yaml_text(c, "hyp:\n  optim:\n    betas: [0.9]\n", "test"), UserError);
  EXPECT_THROW(set_key(c, "hyp.optim.betas", "0.9,0.99,0.9"), UserError);
  EXPECT_THROW(set_key(c, "hyp.optim.betas", "0.9,x"), UserError);
  EXPECT_THROW(set_key(c, "hyp.optim.betas", "0.9,1.5"), UserError);
  EXPECT_THROW(set_key(c, "hyp.optim.fista_mod", "1,1"), UserError);
  EXPECT_THROW(set_key(c, "hyp.stop_at_val_accuracy", "101"), UserError);
  EXPECT_THROW(apply_yaml_text(c, "hyp:\n  optim:\n    betas: [[0.9]]\n", "test"), UserError);
}

// Every option this work added is listed by `fullbatch keys`, and so are the names the zoo, the
// loaders and the optimizers accept.
TEST(KeysCommand, ListsTheNewOptionsAndNames) {
  std::string out;
  ASSERT_EQ(testing::run_command(std::string(FULLBATCH_CLI_PATH) + " keys", &out), 0) << out;
  for (const char* key : {"hyp.optim.name",
                          "hyp.optim.betas",
                          "hyp.optim.amsgrad",
                          "hyp.optim.history_size",
                          "hyp.optim.line_search",
                          "hyp.optim.fista_mod",
                          "hyp.optim.clipping",
                          "hyp.optim.interval",
                          "hyp.optim_modification.name",
                          "hyp.optim_modification.rho",
                          "hyp.optim_modification.trust_coefficient",
                          "hyp.only_linear_layers_weight_decay",
                          "hyp.stop_at_val_accuracy",
                          "data.pixels",
                          "data.resize",
                          "pyramidnet110",
                          "pyramidnet272",
                          "nfnet",
                          "linear",
                          "imagefolder",
                          "tinyimagenet",
                          "L-BFGS",
                          "GD-AGC",
                          "LARC",
                          "random-resized-crop"})
    EXPECT_NE(out.find(key), std::string::npos) << key;
}

TEST(DataKeys, ImageFolderKeysAreRefusedForOtherDatasets) {
  Config c;
  set_key(c, "data.pixels", "64");
  EXPECT_THROW(validate(c), UserError);
  set_key(c, "data.name", "tinyimagenet");
  EXPECT_NO_THROW(validate(c));
  Config d;
  set_key(d, "data.augmentations", "random-resized-crop");
  EXPECT_THROW(validate(d), UserError);
}

// One full-batch SAM step with lr 1, no momentum and no weight decay on a model without
// BatchNorm moves the weights by exactly minus the big-batch gradient taken at
// w + rho g / ||g||, g the big-batch gradient at w; and it counts two passes over the data.
TEST(Sam, FullBatchStepUsesTheGradientAtTheAscentPoint) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  const double rho = 0.05;
  Trainer trainer(testing::prepared(small_config(
                      {"data.augmentations=none", "hyp.scheduler=constant", "hyp.optim.lr=1",
                       "hyp.optim.momentum=0", "hyp.optim.weight_decay=0", "hyp.steps=1",
                       "hyp.optim_modification.name=SAM", "hyp.optim_modification.rho=0.05"})),
                  std::make_shared<LocalCommunicator>());
  auto params = trainer.model().parameters();
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.detach().clone());

  torch::Tensor x = normalize(trainer.data().train.images, trainer.data());
  auto big_batch_gradient = [&] {
    torch::Tensor loss = torch::nn::functional::cross_entropy(trainer.model().forward(x),
                                                              trainer.data().train.labels);
    return torch::autograd::grad({loss}, params);
  };
  std::vector<torch::Tensor> g = big_batch_gradient();
  double norm2 = 0;
  for (auto& t : g) norm2 += t.pow(2).sum().item<double>();
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i)
      params[i].add_(g[i], rho / (std::sqrt(norm2) + 1e-12));
  }
  std::vector<torch::Tensor> g_ascent = big_batch_gradient();
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(before[i]);
  }

  StepRecord r = trainer.train_step();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor moved = before[i] - params[i].detach();
    EXPECT_TRUE(torch::allclose(moved, g_ascent[i], 1e-4, 1e-6))
        << "param " << i << " max diff " << (moved - g_ascent[i]).abs().max().item<double>();
  }
  EXPECT_DOUBLE_EQ(r.epoch, 2.0) << "SAM evaluates the full gradient twice a step";
}

}  // namespace
}  // namespace fullbatch
