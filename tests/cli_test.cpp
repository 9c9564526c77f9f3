#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fullbatch/common/files.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/run/sweep.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::run_command;
using testing::TempDir;
namespace fs = std::filesystem;

const std::string kCli = FULLBATCH_CLI_PATH;
const std::string kTiny =
    " data.name=fashion-mnist data.size=128 data.batch_size=64 model.width=4 hyp.steps=2"
    " data.test_size=500 impl.threads=1 impl.progress=false";

nlohmann::json summary_of(const std::string& dir) {
  return nlohmann::json::parse(std::ifstream(dir + "/summary.json"));
}

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class PresetRun : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetRun, RunsTwoStepsOnATinySubset) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  const std::string preset = GetParam();
  std::string out;
  int rc =
      run_command(kCli + " train --preset " + preset + " --out " + (dir / "run") + kTiny, &out);
  ASSERT_EQ(rc, 0) << preset << ":\n" << out;
  auto summary = summary_of(dir / "run");
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["steps"], 2);
  EXPECT_EQ(summary["preset"], preset);
  EXPECT_TRUE(fs::exists(dir / "run/model.pt"));
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(EveryPreset, PresetRun, ::testing::ValuesIn(preset_names()),
                         [](const auto& info) { return info.param; });

TEST(Cli, BadInputsGiveOneLineErrorsNamingTheProblem) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  struct Case {
    std::string args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"--preset gradreg data.path=/nonexistent", "/nonexistent"},
      {"--preset gradreg hyp.stepz=3", "did you mean 'hyp.steps'"},
      {"--preset nosuch", "unknown preset 'nosuch'"},
      {"hyp.optim.lr=-1", "'hyp.optim.lr'"},
      {"data.batch_size=0", "'data.batch_size'"},
      {"data.name=fashion-mnist data.size=10", "data.batch_size"},
      {"--config /nonexistent.yaml", "/nonexistent.yaml"},
      {"model.name=resnet19", "resnet19"},
  };
  for (const auto& c : cases) {
    std::string out;
    int rc = run_command(kCli + " train --out " + (dir / "run") + " " + c.args, &out);
    EXPECT_EQ(rc, 2) << c.args << ": " << out;
    EXPECT_NE(out.find(c.expected), std::string::npos) << c.args << ": " << out;
    EXPECT_EQ(count_lines(out), 1) << c.args << ": " << out;
    EXPECT_FALSE(fs::exists(dir / "run/summary.json")) << "a failed start must write nothing";
  }
}

TEST(Cli, SharedCifarGradregCommandWritesFiniteMetrics) {
  if (!testing::have_shared_cifar10())
    GTEST_SKIP() << "../shared/data/cifar10 not present (a fresh clone): CIFAR-10 check skipped";
  TempDir dir;
  std::string out;
  int rc = run_command(kCli + " train --preset gradreg data.path=" + testing::shared_cifar10_dir() +
                           " data.size=512 model.width=8 hyp.steps=3 impl.progress=false --out " +
                           (dir / "run"),
                       &out);
  ASSERT_EQ(rc, 0) << out;
  std::ifstream metrics(dir / "run/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    auto j = nlohmann::json::parse(line);
    for (const char* k : {"train_loss", "grad_norm", "lr"}) EXPECT_TRUE(j[k].is_number()) << line;
  }
  EXPECT_EQ(lines, 3);
}

TEST(Cli, PresetsListsEveryPaperRowWithItsNumber) {
  std::string out;
  ASSERT_EQ(run_command(kCli + " presets", &out), 0);
  for (const auto& p : presets()) {
    EXPECT_NE(out.find(p.name), std::string::npos) << p.name;
    EXPECT_NE(out.find(p.paper_accuracy), std::string::npos) << p.name;
  }
}

TEST(Cli, EvalReproducesTheFinalAccuracy) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  ASSERT_EQ(run_command(kCli + " train --out " + (dir / "run") + kTiny + " model.name=simplecnn"),
            0);
  std::string out;
  ASSERT_EQ(run_command(kCli + " eval --checkpoint " + (dir / "run/model.pt"), &out), 0) << out;
  auto result = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_NEAR(result["val_accuracy"].get<double>(),
              summary_of(dir / "run")["final_val_accuracy"].get<double>(), 1e-9);
  EXPECT_EQ(run_command(kCli + " eval --checkpoint " + (dir / "nothing.pt"), &out), 2);
}

TEST(Cli, SweepIsResumableAndEndsWithAReport) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  const std::string sweep = kCli + " sweep --quiet --presets base_sgd,fb1 --seeds 0,1 --out " +
                            (dir / "sweep") + kTiny + " model.name=simplecnn";
  std::string out;
  ASSERT_EQ(run_command(sweep, &out), 0) << out;
  for (const char* run : {"base_sgd_s0", "base_sgd_s1", "fb1_s0", "fb1_s1"})
    EXPECT_EQ(summary_of(dir / ("sweep/" + std::string(run)))["status"], "completed") << run;
  for (const char* f :
       {"report.md", "report.csv", "report.json", "report.html", "val_accuracy.svg"})
    EXPECT_TRUE(fs::exists(dir / ("sweep/report/" + std::string(f)))) << f;
  EXPECT_NE(out.find("| base_sgd"), std::string::npos) << out;

  // An interrupted run (no finished summary) resumes; finished ones are not rerun; a run whose
  // config no longer matches the sweep is kept aside and started over.
  fs::remove(dir / "sweep/fb1_s1/summary.json");
  ASSERT_EQ(run_command(sweep, &out), 0) << out;
  EXPECT_NE(out.find("already completed, not rerun"), std::string::npos) << out;
  EXPECT_NE(out.find("fb1 seed 1 (resumed)"), std::string::npos) << out;
  EXPECT_EQ(summary_of(dir / "sweep/fb1_s1")["status"], "completed");
  fs::remove(dir / "sweep/fb1_s0/summary.json");
  ASSERT_EQ(run_command(sweep + " hyp.optim.lr=0.05", &out), 0) << out;
  EXPECT_TRUE(fs::exists(dir / "sweep/fb1_s0.incomplete-1"));
  EXPECT_EQ(summary_of(dir / "sweep/fb1_s0")["status"], "completed");
}

}  // namespace
}  // namespace fullbatch

namespace fullbatch {
namespace {

// A dataset whose files are absent is skipped with its reason, in the console and in study.md,
// and the study still ends with its summary (exit 0).
TEST(Cli, StudySkipsDatasetsThatAreNotPresent) {
  TempDir dir;
  std::string out;
  int rc = run_command(
      kCli + " study --quiet --datasets mnist --path mnist=/nonexistent --out " + (dir / "study"),
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("study: mnist skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent"), std::string::npos) << out;
  std::ifstream summary(dir / "study/study.md");
  std::string text((std::istreambuf_iterator<char>(summary)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("## mnist"), std::string::npos) << text;
  EXPECT_NE(text.find("skipped"), std::string::npos) << text;
}

// The value of KEY=... among a row's overrides, or "" when absent.
std::string override_value(const SweepRow& row, const std::string& key) {
  for (const auto& o : row.overrides)
    if (o.rfind(key + "=", 0) == 0) return o.substr(key.size() + 1);
  return "";
}

// The study compares full batch with SGD at equal compute: its SGD row makes as many passes
// (epochs) as the long full-batch rows make steps, each step one pass over the data.
TEST(Cli, StudyAddsSgdAtTheFullBatchRowsPasses) {
  const std::vector<SweepRow> rows = study_ladder();
  const SweepRow* equal = nullptr;
  const SweepRow* gradreg = nullptr;
  for (const auto& r : rows) {
    if (r.name == "base_sgd_equal") equal = &r;
    if (r.name == "gradreg") gradreg = &r;
  }
  ASSERT_NE(equal, nullptr);
  ASSERT_NE(gradreg, nullptr);
  EXPECT_EQ(equal->preset, "base_sgd");
  EXPECT_FALSE(override_value(*gradreg, "hyp.steps").empty());
  EXPECT_EQ(override_value(*equal, "hyp.steps"), override_value(*gradreg, "hyp.steps"));
  EXPECT_EQ(rows.size(), demo_ladder().size() + 1);
}

// The reproduction changes the data and the model, never the paper's protocol: every row
// resolves to its preset's hyper-parameters, only the evaluation cadence, data and model differ.
TEST(Cli, ReproduceKeepsThePapersPresetsUnchanged) {
  const ReproduceScale scale{640, 8};
  const std::vector<std::string> common = reproduce_defaults(scale);
  const std::vector<SweepRow> rows = reproduce_ladder();
  ASSERT_EQ(rows.size(), 5u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.name, row.preset);
    std::vector<std::string> o = row.overrides;
    o.insert(o.end(), common.begin(), common.end());
    const Config got = resolve_config(row.preset, {}, o);
    const Config paper = resolve_config(row.preset, {}, {});
    EXPECT_EQ(got.hyp.steps, paper.hyp.steps) << row.name;
    EXPECT_EQ(got.hyp.warmup, paper.hyp.warmup) << row.name;
    EXPECT_EQ(got.hyp.optim.lr, paper.hyp.optim.lr) << row.name;
    EXPECT_EQ(got.hyp.grad_clip, paper.hyp.grad_clip) << row.name;
    EXPECT_EQ(got.hyp.grad_reg.block_strength, paper.hyp.grad_reg.block_strength) << row.name;
    EXPECT_EQ(got.data.size, 640) << row.name;
    EXPECT_EQ(got.model.width, 8) << row.name;
    EXPECT_EQ(got.data.name, "cifar10") << row.name;
    // What differs from the preset: only data, model and bookkeeping keys.
    for (const auto& d : result_differences(got, paper))
      EXPECT_TRUE(d.rfind("data.", 0) == 0 || d.rfind("model.", 0) == 0) << row.name << ": " << d;
  }
  EXPECT_EQ(resolve_config("fb2", {}, {}).hyp.steps, 3000);
  EXPECT_EQ(resolve_config("gradreg", {}, {}).hyp.optim.lr, 0.8);
}

TEST(Cli, DryRunReportsTheFixedAugmentationTableWithoutTraining) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  std::string out;
  ASSERT_EQ(testing::run_command(kCli + " train --dry-run --out " + (dir / "run") + kTiny +
                                     " data.fixed_augmentations=40",
                                 &out),
            0)
      << out;
  auto j = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(j["train_samples"], 40 * 128);
  EXPECT_EQ(j["fixed_augmentation_table_bytes"], 3 * 40 * 128);
  EXPECT_EQ(j["blocks_per_step"], 40 * 128 / 64);
  EXPECT_FALSE(std::filesystem::exists(dir / "run")) << "a dry run writes nothing";
}

}  // namespace
}  // namespace fullbatch

namespace fullbatch {
namespace {

// `fullbatch analyze` end to end on a tiny run: its files and figures, a landscape that continues
// after an interruption, the interpolation to a second run, curvature in metrics.jsonl and the
// report's eigenvalue plot and analysis section, and one-line errors for bad requests.
TEST(Cli, AnalyzeWritesResumableResultsThatTheReportShows) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  const std::string tiny = kTiny + " model.name=simplecnn analysis.data_size=64";
  std::string out;
  ASSERT_EQ(run_command(kCli + " train --preset fb1 --out " + (dir / "a") + tiny +
                            " analysis.every_nth_step=1 analysis.lanczos_iterations=3",
                        &out),
            0)
      << out;
  ASSERT_EQ(run_command(kCli + " train --preset base_sgd --out " + (dir / "b") + tiny, &out), 0)
      << out;
  const std::string metrics = read_file(dir / "a/metrics.jsonl");
  EXPECT_EQ(count_lines(metrics), 2);
  EXPECT_NE(metrics.find("\"top_eigenvalue\""), std::string::npos);

  const std::string analyze =
      kCli + " analyze --checkpoint " + (dir / "a") +
      " analysis.data_size=64 analysis.trace_samples=2 analysis.landscape.xnum=7";
  ASSERT_EQ(
      run_command(analyze + " --what curvature,fd-error,sam,flatness,gradients,landscape", &out), 0)
      << out;
  for (const char* f : {"curvature.json", "fd_error.json", "sam.json", "flatness.json",
                        "gradients.json", "landscape_1d.jsonl", "landscape_1d.svg", "fd_error.svg"})
    EXPECT_TRUE(fs::exists(dir / ("a/analysis/" + std::string(f)))) << f << "\n" << out;
  const auto curvature = nlohmann::json::parse(read_file(dir / "a/analysis/curvature.json"));
  EXPECT_TRUE(curvature["trace"].contains("estimate"));
  EXPECT_EQ(curvature["batchnorm"], "eval");

  // Cut the landscape to three points and a half-written line: the rerun completes the same file.
  const std::string whole = read_file(dir / "a/analysis/landscape_1d.jsonl");
  size_t pos = 0;
  for (int line = 0; line < 4; ++line) pos = whole.find('\n', pos) + 1;
  std::ofstream(dir / "a/analysis/landscape_1d.jsonl", std::ios::trunc) << whole.substr(0, pos + 5);
  ASSERT_EQ(run_command(analyze + " --what landscape", &out), 0) << out;
  EXPECT_EQ(read_file(dir / "a/analysis/landscape_1d.jsonl"), whole);
  // Other settings are not mixed into that file.
  EXPECT_EQ(run_command(analyze + " --what landscape analysis.landscape.norm=layer", &out), 2);
  EXPECT_EQ(count_lines(out), 1) << out;
  // The finite-difference diagnostic refuses regularizer settings it does not follow, in one line.
  for (const char* setting : {" hyp.sub_batch=16", " hyp.grad_reg.acc_strength=0.1"}) {
    EXPECT_EQ(run_command(analyze + " --what fd-error" + setting, &out), 2) << setting;
    EXPECT_EQ(count_lines(out), 1) << out;
    EXPECT_NE(out.find("fd-error"), std::string::npos) << out;
  }

  ASSERT_EQ(run_command(analyze + " --what interpolation analysis.interpolation.num=3 --to " +
                            (dir / "b/model.pt"),
                        &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(dir / "a/analysis/interpolation_loss.svg"));
  EXPECT_EQ(count_lines(read_file(dir / "a/analysis/interpolation.jsonl")), 4);

  ASSERT_EQ(
      run_command(
          kCli + " report --out " + (dir / "report") + " " + (dir / "a") + " " + (dir / "b"), &out),
      0)
      << out;
  EXPECT_TRUE(fs::exists(dir / "report/top_eigenvalue.svg"));
  const std::string md = read_file(dir / "report/report.md");
  EXPECT_NE(md.find("Analyses"), std::string::npos);
  EXPECT_NE(md.find("landscape_1d.svg"), std::string::npos);

  for (const std::string bad : {" --what nonsense", " --what interpolation", " analysis.fd_eps=0,1",
                                " analysis.landscape.norm=sideways"}) {
    EXPECT_EQ(run_command(analyze + bad, &out), 2) << bad << "\n" << out;
    EXPECT_EQ(count_lines(out), 1) << bad << "\n" << out;
  }
  EXPECT_EQ(run_command(kCli + " analyze --checkpoint " + (dir / "nothing"), &out), 2);
  EXPECT_EQ(count_lines(out), 1) << out;
}

}  // namespace
}  // namespace fullbatch
