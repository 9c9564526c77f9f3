#include "fullbatch/run/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli_util.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/models/weights.h"
#include "test_util.h"

namespace fullbatch {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

Checkpoint sample_checkpoint(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.config_yaml = "seed: 3\n";
  c.metrics_jsonl = "{\"step\":1}\n{\"step\":2}\n";
  c.state["model.w"] = torch::arange(12, torch::kFloat32).reshape({3, 4}) * step;
  c.state["model.bn.num_batches_tracked"] = torch::full({}, step, torch::kInt64);
  c.state["trainer.step"] = torch::full({}, step, torch::kInt64);
  return c;
}

void expect_rejected(const std::string& bytes, const std::string& origin, const std::string& why) {
  try {
    decode_checkpoint_bytes(bytes, origin);
    ADD_FAILURE() << "accepted a damaged checkpoint (" << why << ")";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(origin), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Checkpoint, RoundTripKeepsEveryField) {
  TempDir dir;
  const std::string path = save_checkpoint(dir.path(), sample_checkpoint(7), 3);
  EXPECT_EQ(path, dir / "checkpoints/step_000007.ckpt");
  Checkpoint c = read_checkpoint(path);
  EXPECT_EQ(c.step, 7);
  EXPECT_FALSE(c.finished);
  EXPECT_EQ(c.config_yaml, "seed: 3\n");
  EXPECT_EQ(c.metrics_jsonl, "{\"step\":1}\n{\"step\":2}\n");
  ASSERT_EQ(c.state.size(), 3u);
  EXPECT_TRUE(torch::equal(c.state["model.w"], sample_checkpoint(7).state["model.w"]));
  EXPECT_EQ(c.state["model.bn.num_batches_tracked"].item<int64_t>(), 7);
}

TEST(Checkpoint, KeepsOnlyTheNewestK) {
  TempDir dir;
  for (int64_t s = 1; s <= 5; ++s) save_checkpoint(dir.path(), sample_checkpoint(s * 10), 2);
  auto all = list_checkpoints(dir.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::path(all[0]).filename(), "step_000050.ckpt");
  EXPECT_EQ(fs::path(all[1]).filename(), "step_000040.ckpt");
}

TEST(Checkpoint, EveryTruncationAndByteFlipIsRejectedNamingTheFile) {
  TempDir dir;
  const std::string bytes = read_file(save_checkpoint(dir.path(), sample_checkpoint(2), 1));
  for (size_t n = 0; n < bytes.size(); n += 1 + n / 8)
    expect_rejected(bytes.substr(0, n), "ck.ckpt", "truncated to " + std::to_string(n));
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    expect_rejected(damaged, "ck.ckpt", "byte " + std::to_string(i) + " flipped");
  }
  expect_rejected(bytes + "x", "ck.ckpt", "trailing byte");
}

TEST(Checkpoint, CorruptNewestFallsBackToThePreviousOne) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_checkpoint(2), 3);
  const std::string newest = save_checkpoint(dir.path(), sample_checkpoint(4), 3);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  auto found = newest_valid_checkpoint(dir.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->checkpoint.step, 2);
  ASSERT_EQ(found->rejected.size(), 1u);
  EXPECT_NE(found->rejected[0].find("step_000004.ckpt"), std::string::npos) << found->rejected[0];
  EXPECT_NE(found->rejected[0].find("truncated"), std::string::npos) << found->rejected[0];

  fs::resize_file(found->path, 10);
  EXPECT_THROW(newest_valid_checkpoint(dir.path()), UserError);
  EXPECT_FALSE(newest_valid_checkpoint(dir / "no-run"));
}

TEST(Checkpoint, NonFiniteStateIsNeverWritten) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_checkpoint(1), 1);
  Checkpoint bad = sample_checkpoint(2);
  bad.state["model.w"][0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(save_checkpoint(dir.path(), bad, 1), DivergenceError);
  auto all = list_checkpoints(dir.path());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(read_checkpoint(all[0]).step, 1);
}

// ---- kill -9 and resume: bit-identical to an uninterrupted run ----

// resnet20 keeps BatchNorm (running stats and num_batches_tracked must survive a resume).
std::vector<std::string> tiny_run_args(const std::string& data_dir,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"data.name=fashion-mnist",
                                "data.path=" + data_dir,
                                "data.batch_size=32",
                                "model.name=resnet20",
                                "model.width=4",
                                "hyp.warmup=2",
                                "impl.threads=2",
                                "impl.progress=false",
                                "impl.device=cpu",
                                "impl.validate_every_nth_step=4",
                                "impl.checkpoint.save_every_nth_step=2",
                                "impl.checkpoint.keep=2"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

void expect_same_results(const std::string& reference, const std::string& resumed) {
  EXPECT_EQ(testing::results_of(reference + "/metrics.jsonl"),
            testing::results_of(resumed + "/metrics.jsonl"));
  auto a = unpickle_state_dict(read_file(reference + "/model.pt"), "reference");
  auto b = unpickle_state_dict(read_file(resumed + "/model.pt"), "resumed");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b[name])) << "tensor " << name << " differs after resume";
  }
  auto sa = nlohmann::json::parse(testing::read_text(reference + "/summary.json"));
  auto sb = nlohmann::json::parse(testing::read_text(resumed + "/summary.json"));
  for (const char* k : {"status", "steps", "final_val_accuracy", "final_val_loss",
                        "final_train_loss", "final_train_accuracy", "epochs"})
    EXPECT_EQ(sa[k], sb[k]) << k;
}

void kill_and_resume(const std::vector<std::string>& extra, int steps, unsigned seed) {
  TempDir dir;
  testing::write_tiny_idx_dataset(dir.path(), 96, 32);
  std::vector<std::string> args = tiny_run_args(dir.path(), extra);
  args.push_back("hyp.steps=" + std::to_string(steps));

  std::vector<std::string> ref = {"train", "--quiet", "--out", dir / "ref"};
  ref.insert(ref.end(), args.begin(), args.end());
  ASSERT_EQ(testing::wait_exit(testing::spawn_cli(ref, dir / "ref.log")), 0)
      << testing::read_text(dir / "ref.log");

  // Kill points drawn at random (but reproducibly): one early, one later.
  std::mt19937 rng(seed);
  const int first = std::uniform_int_distribution<int>(1, steps / 2)(rng);
  const int second = std::uniform_int_distribution<int>(first + 1, steps - 1)(rng);
  SCOPED_TRACE("killed after metrics lines " + std::to_string(first) + " and " +
               std::to_string(second));
  const std::string run = dir / "run", metrics = dir / "run/metrics.jsonl";
  std::vector<std::string> start = {"train", "--quiet", "--out", run};
  start.insert(start.end(), args.begin(), args.end());
  testing::kill_after_lines(testing::spawn_cli(start, dir / "1.log"), metrics, first);
  const std::vector<std::string> resume = {"train", "--quiet", "--resume", run};
  testing::kill_after_lines(testing::spawn_cli(resume, dir / "2.log"), metrics, second);
  ASSERT_EQ(testing::wait_exit(testing::spawn_cli(resume, dir / "3.log")), 0)
      << testing::read_text(dir / "2.log") << testing::read_text(dir / "3.log");
  expect_same_results(dir / "ref", run);
  EXPECT_LE(list_checkpoints(run).size(), 2u);
}

TEST(KillAndResume, FullBatchIsBitIdentical) {
  kill_and_resume({}, 10, 11);
}

TEST(KillAndResume, SgdIsBitIdentical) {
  kill_and_resume({"hyp.train_stochastic=true", "hyp.shuffle=true"}, 8, 22);
}

// The optimizers' own state (Adam's moments and step count, L-BFGS's curvature pairs) and the
// passes of SAM's and L-BFGS's extra gradient evaluations survive a resume.
TEST(KillAndResume, AdamWithSamIsBitIdentical) {
  kill_and_resume({"hyp.optim.name=Adam", "hyp.optim.lr=1e-3", "hyp.optim_modification.name=SAM"},
                  6, 44);
}

TEST(KillAndResume, LbfgsIsBitIdentical) {
  kill_and_resume({"hyp.optim.name=L-BFGS", "hyp.optim.lr=0.5", "hyp.optim.weight_decay=0",
                   "data.augmentations=none"},
                  6, 55);
}

TEST(KillAndResume, RegularizedNoisyEmaIsBitIdentical) {
  kill_and_resume({"hyp.grad_reg.block_strength=0.5", "hyp.grad_noise.additive=0.01",
                   "hyp.grad_clip=2", "hyp.evaluate_ema=true", "hyp.eval_ema_momentum=0.9"},
                  10, 33);
}

TEST(KillAndResume, CorruptNewestCheckpointIsReportedAndThePreviousOneUsed) {
  TempDir dir;
  testing::write_tiny_idx_dataset(dir.path(), 96, 32);
  std::vector<std::string> args =
      tiny_run_args(dir.path(), {"hyp.steps=6", "impl.checkpoint.keep=5"});
  std::vector<std::string> ref = {"train", "--quiet", "--out", dir / "ref"};
  ref.insert(ref.end(), args.begin(), args.end());
  ASSERT_EQ(testing::wait_exit(testing::spawn_cli(ref, dir / "ref.log")), 0);
  // A crash after step 4's checkpoint, whose file then got damaged on disk.
  fs::copy(dir / "ref", dir / "run", fs::copy_options::recursive);
  fs::remove(dir / "run/checkpoints/step_000006.ckpt");
  fs::remove(dir / "run/model.pt");
  fs::remove(dir / "run/summary.json");
  fs::resize_file(dir / "run/checkpoints/step_000004.ckpt", 100);
  std::string out;
  ASSERT_EQ(testing::run_command(
                std::string(FULLBATCH_CLI_PATH) + " train --quiet --resume " + (dir / "run"), &out),
            0)
      << out;
  EXPECT_NE(out.find("step_000004.ckpt: truncated"), std::string::npos) << out;
  expect_same_results(dir / "ref", dir / "run");

  ASSERT_EQ(testing::run_command(
                std::string(FULLBATCH_CLI_PATH) + " train --resume " + (dir / "run"), &out),
            0);
  EXPECT_NE(out.find("already complete"), std::string::npos) << out;
}

}  // namespace
}  // namespace fullbatch
