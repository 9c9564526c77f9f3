// fullbatch bench and the runtime settings behind it (threads, precision, determinism, memory).
// Correctness only: nothing here asserts a speed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fullbatch/bench/benchmark.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/torch_compat.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/training/runtime.h"
#include "fullbatch/training/trainer.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::run_command;
using testing::TempDir;

const char* kTiny =
    " data.name=fashion-mnist data.size=256 data.batch_size=64 model.name=resnet18"
    " model.width=4 impl.threads=2 impl.device=cpu";

std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

TEST(Bench, CliPrintsTableAndEndsWithJson) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  std::string out;
  const std::string json_path = dir / "bench.json";
  ASSERT_EQ(run_command(std::string(FULLBATCH_CLI_PATH) + " bench" + kTiny +
                            " steps=1 warmup=0 --json " + json_path,
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("full-batch step"), std::string::npos) << out;
  EXPECT_NE(out.find("regularized / full-batch step time"), std::string::npos) << out;
  const auto j = nlohmann::json::parse(last_line(out));
  EXPECT_GT(j.at("images_per_s").get<double>(), 0);
  EXPECT_EQ(j.at("full_batch").at("images").get<int64_t>(), 256);
  EXPECT_GT(j.at("regularized").at("ratio_to_full_batch").get<double>(), 0);
  EXPECT_EQ(j.at("sgd_epoch").at("images").get<int64_t>(), 256);
  EXPECT_EQ(j.at("eval").at("images").get<int64_t>(), 10000);
  EXPECT_GT(j.at("profile").at("data_s").get<double>(), 0);
  EXPECT_GT(j.at("full_batch").at("peak_memory_bytes").get<int64_t>(), 0);
  std::ifstream file(json_path);
  EXPECT_EQ(nlohmann::json::parse(file), j);
}

TEST(Bench, PartsNoneTimesOnlyTheFullBatchStep) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  std::string out;
  ASSERT_EQ(run_command(
                std::string(FULLBATCH_CLI_PATH) + " bench" + kTiny + " steps=1 warmup=0 parts=none",
                &out),
            0)
      << out;
  const auto j = nlohmann::json::parse(last_line(out));
  EXPECT_TRUE(j.contains("full_batch"));
  EXPECT_FALSE(j.contains("regularized") || j.contains("sgd_epoch") || j.contains("eval"));
}

TEST(Bench, BadArgumentsAreOneLineUserErrors) {
  std::string out;
  EXPECT_EQ(run_command(std::string(FULLBATCH_CLI_PATH) + " bench steps=0", &out), 2) << out;
  EXPECT_NE(out.find("bench argument 'steps'"), std::string::npos) << out;
  EXPECT_EQ(
      run_command(std::string(FULLBATCH_CLI_PATH) + " bench" + kTiny + " impl.mixed_precision=fp16",
                  &out),
      2)
      << out;
  EXPECT_NE(out.find("impl.mixed_precision"), std::string::npos) << out;
}

TEST(Bench, TakeBenchOptionsLeavesConfigKeys) {
  std::vector<std::string> args = {"steps=5", "model.width=16", "warmup=0", "parts=reg,eval",
                                   "data.size=100"};
  BenchOptions o = take_bench_options(args);
  EXPECT_EQ(o.steps, 5);
  EXPECT_EQ(o.warmup, 0);
  EXPECT_TRUE(o.regularized);
  EXPECT_TRUE(o.eval);
  EXPECT_FALSE(o.sgd);
  EXPECT_FALSE(o.profile);
  EXPECT_EQ(args, (std::vector<std::string>{"model.width=16", "data.size=100"}));
}

// Hand count for width 64 on 32x32 RGB, 10 classes: stem 9*3*64*32^2 = 1,769,472; stage 1
// 4*9*64^2*32^2 = 150,994,944; stages 2-4 each 9*c*2c*s^2 + 27*(2c)^2*s^2 + c*2c*s^2
// = 134,217,728 (the resolution halves as the width doubles); fc 512*10 = 5,120.
TEST(Bench, ResNet18MacsMatchHandCount) {
  EXPECT_EQ(resnet18_forward_macs(64, 3, 32, 10), 555422720);
  // 28x28 inputs reach 14, 7, then ceil(7/2) = 4.
  const int64_t w = 4;
  int64_t expect = 9 * 1 * w * 784 + 4 * 9 * w * w * 784;
  expect += 9 * w * 2 * w * 196 + 27 * 4 * w * w * 196 + 2 * w * w * 196;
  expect += 9 * 2 * w * 4 * w * 49 + 27 * 16 * w * w * 49 + 8 * w * w * 49;
  expect += 9 * 4 * w * 8 * w * 16 + 27 * 64 * w * w * 16 + 32 * w * w * 16;
  EXPECT_EQ(resnet18_forward_macs(w, 1, 28, 10), expect + 8 * w * 10);
}

TEST(Runtime, MixedPrecisionOnTheCpuIsBf16Only) {
  EXPECT_EQ(autocast_dtype(Precision::kNone, torch::kCPU), torch::kFloat);
  EXPECT_EQ(autocast_dtype(Precision::kBf16, torch::kCPU), torch::kBFloat16);
  EXPECT_THROW(autocast_dtype(Precision::kFp16, torch::kCPU), UserError);
  // An unknown precision cannot reach the runtime: the config refuses it.
  Config c;
  EXPECT_THROW(apply_override(c, "impl.mixed_precision=fp8"), UserError);
  const auto a = torch::ones({2, 2});
  {
    AutocastScope fp32(torch::kCPU, torch::kFloat);  // inactive: changes nothing
    EXPECT_EQ(a.matmul(a).scalar_type(), torch::kFloat);
  }
  {
    AutocastScope bf16(torch::kCPU, torch::kBFloat16);
    EXPECT_EQ(a.matmul(a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(a.matmul(a).scalar_type(), torch::kFloat) << "the scope must restore fp32";
}

// torch_compat.h's autocast calls keep CPU and CUDA apart, as libtorch does on either version;
// CUDA's switch can be set and read back without a GPU.
TEST(Runtime, CompatAutocastStateIsPerDeviceType) {
  const auto cpu = c10::DeviceType::CPU, cuda = c10::DeviceType::CUDA;
  const bool cpu_was = compat::autocast_state(cpu).enabled;
  const bool cuda_was = compat::autocast_state(cuda).enabled;
  const auto cpu_dtype = compat::autocast_state(cpu).dtype;
  const auto cuda_dtype = compat::autocast_state(cuda).dtype;
  EXPECT_FALSE(cpu_was);
  EXPECT_FALSE(cuda_was);
  compat::set_autocast(cuda, true, torch::kHalf);
  EXPECT_TRUE(compat::autocast_state(cuda).enabled);
  EXPECT_EQ(compat::autocast_state(cuda).dtype, torch::kHalf);
  EXPECT_FALSE(compat::autocast_state(cpu).enabled) << "CUDA's switch turned the CPU's on";
  EXPECT_EQ(compat::autocast_state(cpu).dtype, cpu_dtype);
  const auto a = torch::ones({2, 2});
  EXPECT_EQ(a.matmul(a).scalar_type(), torch::kFloat) << "CUDA autocast changed a CPU matmul";
  compat::set_autocast(cuda, cuda_was, cuda_dtype);
  compat::set_autocast(cpu, true, torch::kBFloat16);
  EXPECT_EQ(a.matmul(a).scalar_type(), torch::kBFloat16);
  compat::set_autocast(cpu, cpu_was, cpu_dtype);
  EXPECT_EQ(a.matmul(a).scalar_type(), torch::kFloat);
  EXPECT_FALSE(compat::autocast_state(cuda).enabled);
  EXPECT_EQ(compat::autocast_state(cuda).dtype, cuda_dtype);
}

TEST(Runtime, ChannelsLastAutoFollowsTheMeasuredRule) {
  const torch::Device cuda(torch::kCUDA, 0);
  Config c;
  EXPECT_EQ(c.impl.channels_last, ChannelsLast::kAuto);
  ModelSpec model;
  auto use = [&](const torch::Device& device) {
    return use_channels_last(c.impl.channels_last, c.impl.mixed_precision, device, model);
  };
  model.width = 16;
  EXPECT_TRUE(use(torch::kCPU)) << "fp32 ResNet-18 width 16 is faster channels-last";
  EXPECT_TRUE(use(cuda));
  model.width = 4;
  EXPECT_FALSE(use(torch::kCPU)) << "fp32 width 4 is 2x slower channels-last";
  EXPECT_TRUE(use(cuda));
  c.impl.mixed_precision = Precision::kBf16;
  EXPECT_TRUE(use(torch::kCPU));
  c.impl.mixed_precision = Precision::kNone;
  model.width = 64;
  model.name = "vgg11";
  EXPECT_FALSE(use(torch::kCPU)) << "families not measured stay NCHW";
  model.name = "resnet18";
  c.impl.channels_last = ChannelsLast::kOff;
  EXPECT_FALSE(use(torch::kCPU));
  EXPECT_FALSE(use(cuda));
  c.impl.channels_last = ChannelsLast::kOn;
  model.width = 4;
  EXPECT_TRUE(use(torch::kCPU));
}

TEST(Runtime, NativeBf16IsReadFromTheCpuFlags) {
  EXPECT_TRUE(
      cpuinfo_has_native_bf16("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 sha_ni\n"));
  EXPECT_TRUE(cpuinfo_has_native_bf16("flags : fpu amx_bf16 amx_tile\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16("flags\t\t: fpu avx2 avx512f avx512bw\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16("model name : avx512_bf16 in the name only\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16(""));
}

TEST(Runtime, ThreadsZeroMeansEveryAllowedCore) {
  const int before = torch::get_num_threads();
  set_threads(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  set_threads(0);
  EXPECT_GE(torch::get_num_threads(), 1);
  torch::set_num_threads(before);
}

TEST(Runtime, DeterministicModeTogglesTheGlobalFlags) {
  apply_determinism(true, torch::kCPU);
  EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
  EXPECT_TRUE(at::globalContext().deterministicCuDNN());
  apply_determinism(false, torch::kCPU);
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());  // autotuning only on CUDA
}

TEST(Runtime, DeterministicCpuRunsRepeatBitForBit) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  auto config = resolve_config("", {},
                               {"data.name=fashion-mnist", "data.size=128", "data.batch_size=64",
                                "model.name=resnet18", "model.width=4", "impl.threads=2",
                                "impl.device=cpu", "impl.deterministic=true", "hyp.steps=2"});
  auto weights_after_two_steps = [&] {
    Trainer t(testing::prepared(config), std::make_shared<LocalCommunicator>());
    t.set_validation(false);
    t.train_step();
    t.train_step();
    return t.model().parameters();
  };
  auto a = weights_after_two_steps(), b = weights_after_two_steps();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  apply_determinism(false, torch::kCPU);
}

TEST(Runtime, PeakMemoryIsPositiveOnCpu) {
  EXPECT_GT(peak_memory_bytes(torch::kCPU), 0);
}

}  // namespace
}  // namespace fullbatch
