// Multi-process training over c10d/Gloo on loopback: 2 ranks against 1 process, repeatability,
// the launcher, and the failure paths (a killed or hung rank, a rank that never joins).
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "fullbatch/common/error.h"
#include "fullbatch/distributed/launch.h"
#include "fullbatch/distributed/process_group.h"
#include "fullbatch/training/block_pass.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::run_command;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

const std::string kCli = FULLBATCH_CLI_PATH;

// Tiny Fashion-MNIST runs; one thread per rank since the ranks share the machine's cores.
std::string tiny(const std::string& extra) {
  return "data.name=fashion-mnist data.size=256 data.batch_size=64 model.width=4 impl.threads=1 "
         "impl.progress=false impl.device=cpu hyp.warmup=1 " +
         extra;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Metrics without the wall-clock fields, one string per step.
std::vector<std::string> timeless(const std::vector<nlohmann::json>& records) {
  std::vector<std::string> out;
  for (auto j : records) {
    for (const char* k : {"step_time_s", "time_s", "images_per_s"}) j.erase(k);
    out.push_back(j.dump());
  }
  return out;
}

template <typename Pred>
bool wait_for(Pred pred, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// Starts `command` in the background with its output in `log`; its exit code lands in `rc`.
// The subshell must not hold run_command's pipe, or run_command would wait for it.
void spawn(const std::string& command, const std::string& log, const std::string& rc) {
  ASSERT_EQ(run_command("(" + command + " > " + log + " 2>&1; echo $? > " + rc +
                        ") < /dev/null > /dev/null 2>&1 &"),
            0);
}

// Starts `command` in the background as itself (exec), returning its pid.
int spawn_exec(const std::string& command, const std::string& log) {
  std::string out;
  run_command("sh -c '(exec " + command + " < /dev/null > " + log + " 2>&1) & echo $!'", &out);
  return std::atoi(out.c_str());
}

int read_rc(const std::string& rc) {
  return std::atoi(read_file(rc).c_str());
}

std::string rank_env(int rank, int world, int port) {
  return "env RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
         " WORLD_SIZE=" + std::to_string(world) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

TEST(Distributed, BucketsGroupByDtypeAndDeviceUnderTheCap) {
  std::vector<torch::Tensor> t = {torch::zeros({10}), torch::zeros({10}, torch::kFloat64),
                                  torch::zeros({20}), torch::zeros({100}), torch::zeros({5})};
  // Cap 120 bytes: floats 40 + 80 fit, the 400-byte tensor gets its own bucket.
  auto b = plan_buckets(t, 120);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], (std::vector<size_t>{0, 2}));
  EXPECT_EQ(b[1], (std::vector<size_t>{1}));
  EXPECT_EQ(b[2], (std::vector<size_t>{3}));
  EXPECT_EQ(b[3], (std::vector<size_t>{4}));
  EXPECT_EQ(plan_buckets(t, 1 << 20).size(), 2u);
}

// One rank of a world, recording what it is asked to sum (the tensors' values at that moment).
class RecordingCommunicator final : public Communicator {
 public:
  RecordingCommunicator(int rank, int world) : rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    for (const auto& t : tensors) reduced.push_back(t.clone());
  }
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  void barrier() override {}
  std::vector<torch::Tensor> reduced;

 private:
  int rank_, world_;
};

TEST(Distributed, BlockPassDealsEachBlockOnceWeighsItOneOverBAndSumsAfterTheVisits) {
  const int64_t blocks = 7;
  const int world = 3;
  std::vector<int> visits(blocks, 0);
  for (int rank = 0; rank < world; ++rank) {
    RecordingCommunicator comm(rank, world);
    torch::Tensor sum = torch::zeros({1}, torch::kFloat64);
    std::vector<int64_t> mine;
    sum_over_blocks(
        comm, blocks,
        [&](int64_t b, double weight) {
          EXPECT_EQ(weight, 1.0 / 7.0);
          mine.push_back(b);
          ++visits[b];
          sum.add_(weight);
        },
        [&] { return TensorList{sum}; });
    // Round-robin, in order: rank r holds r, r + 3, ...
    std::vector<int64_t> expected;
    for (int64_t b = rank; b < blocks; b += world) expected.push_back(b);
    EXPECT_EQ(mine, expected) << "rank " << rank;
    // One reduction, of the sum as it stood after this rank's visits.
    ASSERT_EQ(comm.reduced.size(), 1u) << "rank " << rank;
    EXPECT_DOUBLE_EQ(comm.reduced[0].item<double>(), static_cast<double>(expected.size()) / 7.0);
  }
  EXPECT_EQ(visits, std::vector<int>(blocks, 1));
  // One process: every block, and nothing to sum over ranks.
  RecordingCommunicator alone(0, 1);
  int64_t seen = 0;
  sum_over_blocks(alone, blocks, [&](int64_t, double) { ++seen; }, [] { return TensorList{}; });
  EXPECT_EQ(seen, blocks);
  EXPECT_TRUE(alone.reduced.empty());
}

TEST(Distributed, EnvironmentParsing) {
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  DistEnv env = dist_env_from_environment();
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(communicator_from_env(Config{})->world_size(), 1);
  ::setenv("WORLD_SIZE", "two", 1);
  EXPECT_THROW(dist_env_from_environment(), UserError);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "2", 1);
  EXPECT_THROW(dist_env_from_environment(), UserError);
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");

  Config c;
  c.impl.threads = 0;
  DistEnv two;
  two.world_size = two.local_world_size = 2;
  two.local_rank = 1;
  EXPECT_GE(localize_for_rank(c, two).impl.threads, 1);
  EXPECT_EQ(localize_for_rank(c, DistEnv{}).impl.threads, 0);
}

TEST(Distributed, LaunchPrefixesOutputAndPassesExitCodes) {
  std::string out;
  ASSERT_EQ(run_command(kCli + " launch --nproc 2 -- presets", &out), 0) << out;
  EXPECT_NE(out.find("[rank 0] "), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 1] "), std::string::npos) << out;
  // Every rank rejects the same bad key: a user error, exit code 2.
  EXPECT_EQ(run_command(kCli + " launch --nproc 2 -- train no.such.key=1", &out), 2) << out;
  EXPECT_NE(out.find("exited with code 2"), std::string::npos) << out;
  EXPECT_EQ(run_command(kCli + " launch --nproc 2", &out), 2) << out;
}

class TwoRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    FULLBATCH_REQUIRE_FASHION_MNIST();
    if (!c10d_available()) GTEST_SKIP() << "this build has no c10d Gloo backend";
  }
  TempDir dir_;
};

// The loss column of an analysis' landscape file (its lines after the header).
std::vector<double> landscape_losses(const std::string& path) {
  std::vector<double> losses;
  std::istringstream lines(read_file(path));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) losses.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return losses;
}

TEST_F(TwoRanks, FullBatchMatchesOneProcessAndRepeatsBitForBit) {
  // simplecnn has no BatchNorm, so even the running statistics cannot differ between layouts.
  for (const std::string model : {"simplecnn", "resnet18"}) {
    const std::string cfg = tiny("model.name=" + model + " hyp.steps=3");
    std::string out;
    ASSERT_EQ(run_command(kCli + " train --quiet --out " + dir_ / (model + "1") + " " + cfg, &out),
              0)
        << out;
    for (const char* run : {"2a", "2b"})
      ASSERT_EQ(run_command(kCli + " launch --nproc 2 -- train --quiet --out " +
                                dir_ / (model + run) + " " + cfg,
                            &out),
                0)
          << out;
    auto one = metrics(dir_ / (model + "1"));
    auto two = metrics(dir_ / (model + "2a"));
    ASSERT_EQ(one.size(), 3u);
    ASSERT_EQ(two.size(), 3u);
    for (size_t s = 0; s < one.size(); ++s) {
      EXPECT_NEAR(one[s]["train_loss"].get<double>(), two[s]["train_loss"].get<double>(), 1e-4)
          << model << " step " << s + 1;
      EXPECT_NEAR(one[s]["grad_norm"].get<double>(), two[s]["grad_norm"].get<double>(),
                  1e-4 * one[s]["grad_norm"].get<double>())
          << model << " step " << s + 1;
      EXPECT_EQ(one[s]["train_accuracy"], two[s]["train_accuracy"]) << model << " step " << s + 1;
    }
    if (model == "simplecnn")
      EXPECT_EQ(one.back()["val_accuracy"], two.back()["val_accuracy"]);
    else  // BatchNorm running statistics are averaged over ranks, not accumulated in order
      EXPECT_NEAR(one.back()["val_accuracy"].get<double>(),
                  two.back()["val_accuracy"].get<double>(), 2.0);
    EXPECT_EQ(timeless(two), timeless(metrics(dir_ / (model + "2b")))) << model;
    EXPECT_EQ(read_file(dir_ / (model + "2a/model.pt")), read_file(dir_ / (model + "2b/model.pt")));
  }
}

// impl.blocks_per_pass on two ranks: each rank groups its own blocks (rank 0: 0 and 2, then the
// ragged 4 alone; rank 1: 1 and 3), and the steps agree with one process going block by block.
TEST_F(TwoRanks, GroupedBlocksMatchOneProcessBlockByBlock) {
  const std::string cfg = tiny("model.name=resnet18 hyp.steps=2 data.size=300");
  std::string out;
  ASSERT_EQ(run_command(kCli + " train --quiet --out " + dir_ / "one " + cfg, &out), 0) << out;
  ASSERT_EQ(run_command(kCli + " launch --nproc 2 -- train --quiet --out " + dir_ / "two " + cfg +
                            " impl.blocks_per_pass=2",
                        &out),
            0)
      << out;
  auto one = metrics(dir_ / "one"), two = metrics(dir_ / "two");
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  for (size_t s = 0; s < one.size(); ++s) {
    EXPECT_NEAR(one[s]["train_loss"].get<double>(), two[s]["train_loss"].get<double>(), 1e-4)
        << "step " << s + 1;
    EXPECT_NEAR(one[s]["grad_norm"].get<double>(), two[s]["grad_norm"].get<double>(),
                1e-4 * one[s]["grad_norm"].get<double>())
        << "step " << s + 1;
  }
  const auto summary = nlohmann::json::parse(read_file(dir_ / "two/summary.json"));
  EXPECT_EQ(summary["blocks_per_pass"], 2);
}

TEST_F(TwoRanks, AnalysesShareTheBlocksAndAgreeWithOneProcess) {
  const std::string cfg = tiny("model.name=simplecnn hyp.steps=2");
  std::string out;
  ASSERT_EQ(run_command(kCli + " train --quiet --out " + dir_ / "run " + cfg, &out), 0) << out;
  const std::string args = " analyze --checkpoint " + dir_ / "run" +
                           " --what curvature,gradients,landscape analysis.landscape.xnum=3"
                           " analysis.trace_samples=2 analysis.tolerance=0 analysis.lanczos_iterations=4 --out ";
  ASSERT_EQ(run_command(kCli + args + dir_ / "one", &out), 0) << out;
  ASSERT_EQ(run_command(kCli + " launch --nproc 2 --" + args + dir_ / "two", &out), 0) << out;
  auto json_of = [&](const std::string& f) { return nlohmann::json::parse(read_file(f)); };
  const auto c1 = json_of(dir_ / "one/curvature.json"), c2 = json_of(dir_ / "two/curvature.json");
  const double top = c1["top"]["eigenvalues"][0].get<double>();
  EXPECT_NEAR(c2["top"]["eigenvalues"][0].get<double>(), top, 1e-4 * std::abs(top));
  EXPECT_NEAR(c2["trace"]["estimate"].get<double>(), c1["trace"]["estimate"].get<double>(),
              1e-4 * std::abs(c1["trace"]["estimate"].get<double>()));
  const auto g1 = json_of(dir_ / "one/gradients.json"), g2 = json_of(dir_ / "two/gradients.json");
  EXPECT_NEAR(g2["gradient_norm"].get<double>(), g1["gradient_norm"].get<double>(),
              1e-5 * g1["gradient_norm"].get<double>());
  EXPECT_EQ(g2["block_gradient_norms"].size(), g1["block_gradient_norms"].size());
  const auto l1 = landscape_losses(dir_ / "one/landscape_1d.jsonl");
  const auto l2 = landscape_losses(dir_ / "two/landscape_1d.jsonl");
  ASSERT_EQ(l1.size(), 3u);
  ASSERT_EQ(l2.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(l2[i], l1[i], 1e-5 * std::abs(l1[i]));
}

TEST_F(TwoRanks, SgdSlicesEachGlobalBatch) {
  // Two ranks x 64 images take the same steps as one process with batches of 128.
  const std::string cfg = tiny(
      "model.name=simplecnn hyp.steps=2 hyp.train_stochastic=true hyp.shuffle=true "
      "data.augmentations=none");
  std::string out;
  ASSERT_EQ(
      run_command(kCli + " train --quiet --out " + dir_ / "one " + cfg + " data.batch_size=128",
                  &out),
      0)
      << out;
  ASSERT_EQ(
      run_command(kCli + " launch --nproc 2 -- train --quiet --out " + dir_ / "two " + cfg, &out),
      0)
      << out;
  auto one = metrics(dir_ / "one");
  auto two = metrics(dir_ / "two");
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  for (size_t s = 0; s < 2; ++s)
    EXPECT_NEAR(one[s]["train_loss"].get<double>(), two[s]["train_loss"].get<double>(), 1e-4);
  EXPECT_EQ(one.back()["val_accuracy"], two.back()["val_accuracy"]);
}

TEST_F(TwoRanks, OnlyRankZeroWritesAndRunsAreRefusedAlike) {
  std::string out;
  const std::string cfg = tiny("model.name=simplecnn hyp.steps=1");
  ASSERT_EQ(run_command("cd " + dir_.path() + " && " + kCli +
                            " launch --nproc 2 -- train --quiet " + "--out run " + cfg,
                        &out),
            0)
      << out;
  // One summary line (rank 0's), one run directory.
  EXPECT_EQ(std::count(out.begin(), out.end(), '%'), 1) << out;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()), {}), 1);
  EXPECT_EQ(run_command("cd " + dir_.path() + " && " + kCli +
                            " launch --nproc 2 -- train --quiet " + "--out run " + cfg,
                        &out),
            2)
      << out;
}

TEST_F(TwoRanks, KilledRankFailsTheLaunchFastNamingIt) {
  const std::string log = dir_ / "log", rc = dir_ / "rc", run = dir_ / "run";
  spawn(kCli + " launch --nproc 2 -- train --quiet --out " + run + " " +
            tiny("model.name=simplecnn hyp.steps=100000 impl.validate_every_nth_step=100000"),
        log, rc);
  std::smatch m;
  std::string text;
  ASSERT_TRUE(wait_for(
      [&] {
        text = read_file(log);
        return std::regex_search(text, m, std::regex("rank 1 started \\(pid (\\d+)\\)")) &&
               metrics(run).size() >= 2;
      },
      120))
      << text;
  const auto t0 = Clock::now();
  ::kill(std::stoi(m[1]), SIGKILL);
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(rc) && !read_file(rc).empty(); }, 30))
      << read_file(log);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 15.0);
  EXPECT_EQ(read_rc(rc), 1);
  EXPECT_NE(read_file(log).find("rank 1 exited with signal 9"), std::string::npos)
      << read_file(log);
  // What rank 0 wrote is still whole.
  EXPECT_NO_THROW(metrics(run));
  EXPECT_NO_THROW(nlohmann::json::parse(read_file(run + "/summary.json")));
}

// Without a launcher the survivor itself must notice, within impl.dist_timeout_s, and name the
// rank.
void expect_survivor_names_rank_1(const TempDir& dir, int signal) {
  const std::string run = dir / "run", rc = dir / "rc0";
  const int port = find_free_port();
  const std::string args = " train --quiet --out " + run + " " +
                           tiny(
                               "model.name=simplecnn hyp.steps=100000 "
                               "impl.validate_every_nth_step=100000 impl.dist_timeout_s=3");
  spawn(rank_env(0, 2, port) + kCli + args, dir / "log0", rc);
  const int rank1 = spawn_exec(rank_env(1, 2, port) + kCli + args, dir / "log1");
  ASSERT_GT(rank1, 0);
  ASSERT_TRUE(wait_for([&] { return metrics(run).size() >= 2; }, 120)) << read_file(dir / "log0");
  const auto t0 = Clock::now();
  ::kill(rank1, signal);
  const bool exited = wait_for([&] { return !read_file(rc).empty(); }, 30);
  ::kill(rank1, SIGKILL);
  ASSERT_TRUE(exited) << "rank 0 hangs: " << read_file(dir / "log0");
  // Detection (at most the 3 s timeout) plus the grace period to see who is silent (3 s).
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 15.0);
  const std::string log = read_file(dir / "log0");
  EXPECT_EQ(read_rc(rc), 2) << log;
  EXPECT_NE(log.find("rank 1 stopped responding"), std::string::npos) << log;
  auto summary = nlohmann::json::parse(read_file(run + "/summary.json"));
  EXPECT_EQ(summary["status"], "failed");
  auto records = metrics(run);
  EXPECT_GE(summary["steps"].get<int64_t>(), 2);
  EXPECT_EQ(records.back()["step"], summary["steps"]);
}

TEST_F(TwoRanks, SurvivorNamesAKilledRank) {
  expect_survivor_names_rank_1(dir_, SIGKILL);
}

TEST_F(TwoRanks, SurvivorNamesAHungRank) {
  expect_survivor_names_rank_1(dir_, SIGSTOP);
}

TEST_F(TwoRanks, MissingRankIsNamedAfterTheTimeout) {
  std::string out;
  const int port = find_free_port();
  const auto t0 = Clock::now();
  EXPECT_EQ(run_command(rank_env(0, 2, port) + kCli + " train --quiet --out " + dir_ / "run " +
                            tiny("impl.dist_timeout_s=2"),
                        &out),
            2);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 20.0);
  EXPECT_NE(out.find("rank(s) 1 did not join"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run"));
}

}  // namespace
}  // namespace fullbatch
