#include "fullbatch/run/run_dir.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"

namespace fullbatch {
namespace fs = std::filesystem;

RunDir::RunDir(std::string path) : path_(std::move(path)) {}

RunDir RunDir::default_for(const Config& config) {
  return in_sweep("runs", config.name, config.seed);
}

RunDir RunDir::in_sweep(const std::string& parent, const std::string& row, uint64_t seed) {
  return RunDir((fs::path(parent) / (row + "_s" + std::to_string(seed))).string());
}

std::string RunDir::file(const std::string& name) const { return (fs::path(path_) / name).string(); }

std::string RunDir::checkpoint_file(int64_t step) const {
  char name[40];
  std::snprintf(name, sizeof(name), "step_%06lld.ckpt", static_cast<long long>(step));
  return (fs::path(checkpoint_folder()) / name).string();
}

bool RunDir::exists() const { return fs::exists(path_); }

bool RunDir::holds_run() const {
  return fs::exists(summary_file()) || fs::exists(config_file());
}

std::optional<nlohmann::json> RunDir::read_summary() const {
  std::ifstream in(summary_file());
  if (!in) return std::nullopt;
  nlohmann::json summary = nlohmann::json::parse(in, nullptr, false);
  if (!summary.is_object()) return nlohmann::json::object();
  return summary;
}

std::string RunDir::status() const {
  std::optional<nlohmann::json> summary = read_summary();
  if (!summary) return "";
  auto it = summary->find("status");
  return it != summary->end() && it->is_string() ? it->get<std::string>() : "running";
}

bool RunDir::finished() const {
  const std::string s = status();
  return s == "completed" || s == "diverged";
}

void RunDir::check_available(bool resume) const {
  if (!resume && holds_run())
    throw UserError("output directory " + path_ +
                    " already holds a run; choose another --out or continue it with --resume");
}

void RunDir::create(bool resume) const {
  check_available(resume);
  ensure_writable_dir(path_);
}

void RunDir::write_config(const Config& config) const {
  write_file_atomic(config_file(), to_yaml(config));
}

std::string RunDir::append_metrics(const nlohmann::json& record) const {
  const std::string line = record.dump() + "\n";
  std::ofstream out(metrics_file(), std::ios::app);
  out << line;
  out.flush();
  if (!out) throw UserError("cannot append to " + metrics_file() + ": " + std::strerror(errno));
  return line;
}

void RunDir::replace_metrics(const std::string& text) const {
  write_file_atomic(metrics_file(), text);
}

void RunDir::write_summary(const nlohmann::json& summary) const {
  write_file_atomic(summary_file(), summary.dump(2) + "\n");
}

}  // namespace fullbatch
