#pragma once
// Helpers for tests that drive the fullbatch CLI as a separate process: spawn, watch, kill -9.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fullbatch::testing {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// metrics.jsonl without the wall-clock fields, which no two runs share: what a resumed run must
// reproduce exactly.
inline std::vector<nlohmann::json> results_of(const std::string& metrics) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(metrics));
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    for (const char* k : {"step_time_s", "time_s", "images_per_s"}) j.erase(k);
    out.push_back(j);
  }
  return out;
}

inline int count_lines(const std::string& path) {
  const std::string text = read_text(path);
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Starts `fullbatch args...` with stdout and stderr sent to `log`.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv_s{FULLBATCH_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(::fileno(stdout), 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until `metrics` has at least `lines` lines (or the process ends), then kills it with
// SIGKILL. Returns false when the process had already finished on its own.
inline bool kill_after_lines(pid_t pid, const std::string& metrics, int lines) {
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    if (count_lines(metrics) >= lines) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// A Fashion-MNIST-shaped dataset in IDX format with `train` and `test` images of deterministic
// pseudo-random pixels: the kill -9 tests need exact repeatability, not real images, and a
// 10,000-image test set would make every evaluation cost seconds.
inline void write_tiny_idx_dataset(const std::string& dir, uint32_t train, uint32_t test) {
  auto be32 = [](std::string& s, uint32_t v) {
    for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  uint32_t state = 12345;
  auto write_pair = [&](const std::string& prefix, uint32_t n) {
    std::string images, labels;
    be32(images, 2051), be32(images, n), be32(images, 28), be32(images, 28);
    be32(labels, 2049), be32(labels, n);
    for (uint32_t i = 0; i < n; ++i) {
      labels.push_back(static_cast<char>(i % 10));
      // Class-dependent brightness so there is something to learn.
      for (int p = 0; p < 28 * 28; ++p) {
        state = state * 1664525u + 1013904223u;
        images.push_back(static_cast<char>(((state >> 24) & 0x7f) + 12 * (i % 10)));
      }
    }
    std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary) << images;
    std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary) << labels;
  };
  write_pair("train", train);
  write_pair("t10k", test);
}

inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace fullbatch::testing
