#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fullbatch/config/config.h"
#include "fullbatch/models/model.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch::testing {

// A fresh empty folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fullbatch-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A trainer's options from a config, with the process set up as a run sets it up (threads,
// determinism): what run_training does before it builds its Trainer.
inline TrainerOptions prepared(const Config& config) {
  TrainerOptions options = trainer_options(config);
  apply_process_settings(options.execution, resolve_execution(options.execution, options.model));
  return options;
}

inline std::string fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }
inline bool have_fashion_mnist() {
  return std::filesystem::exists(fashion_mnist_dir() + "/train-images-idx3-ubyte.gz");
}
inline std::string shared_cifar10_dir() {
  return std::string(FULLBATCH_SOURCE_DIR) + "/../shared/data/cifar10";
}
inline bool have_shared_cifar10() {
  return std::filesystem::exists(shared_cifar10_dir() + "/test_batch.bin.gz") ||
         std::filesystem::exists(shared_cifar10_dir() + "/test_batch.bin");
}

#define FULLBATCH_REQUIRE_FASHION_MNIST()                                              \
  if (!::fullbatch::testing::have_fashion_mnist())                                     \
  GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; " \
                  "scripts/setup.sh does it)"

#define FULLBATCH_REQUIRE_SHARED_CIFAR10()                                                 \
  if (!::fullbatch::testing::have_shared_cifar10())                                        \
  GTEST_SKIP() << "CIFAR-10 not found at " << ::fullbatch::testing::shared_cifar10_dir() \
               << " (the project's ../shared data folder; absent in a user's clone)"

// Runs a shell command, returns its exit code; stdout+stderr go to `output`.
inline int run_command(const std::string& command, std::string* output = nullptr) {
  std::string cmd = command + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Debian's python3-torch, which the scripts the tests run need (/usr/bin/python3, not a PATH one).
inline bool have_python_torch() {
  static const bool have = run_command("/usr/bin/python3 -c 'import torch'") == 0;
  return have;
}

}  // namespace fullbatch::testing

// Skips a test that runs `script` when python3-torch is missing, saying what cannot run.
#define FULLBATCH_REQUIRE_PYTHON_TORCH(script)                                                \
  if (!::fullbatch::testing::have_python_torch())                                             \
  GTEST_SKIP() << "Debian's python3-torch is not installed (/usr/bin/python3 -c 'import torch' " \
                  "failed; apt-get install python3-torch): "                                  \
               << script
