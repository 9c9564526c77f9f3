#include "fullbatch/run/run_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"

namespace fullbatch {
namespace fs = std::filesystem;

void RunWriter::check_available(const std::string& dir, bool resume) {
  // config.yaml without summary.json is a run that crashed early: still not to be overwritten.
  if (!resume &&
      (fs::exists(fs::path(dir) / "summary.json") || fs::exists(fs::path(dir) / "config.yaml")))
    throw UserError("output directory " + dir +
                    " already holds a run; choose another --out or continue it with --resume");
}

RunWriter::RunWriter(std::string dir, bool resume) : dir_(std::move(dir)) {
  check_available(dir_, resume);
  ensure_writable_dir(dir_);
}

std::string RunWriter::path(const std::string& file) const {
  return (fs::path(dir_) / file).string();
}

void RunWriter::write_config(const Config& config) const {
  write_file_atomic(path("config.yaml"), to_yaml(config));
}

std::string RunWriter::append_metrics(const nlohmann::json& record) const {
  const std::string line = record.dump() + "\n";
  std::ofstream out(path("metrics.jsonl"), std::ios::app);
  out << line;
  out.flush();
  if (!out)
    throw UserError("cannot append to " + path("metrics.jsonl") + ": " + std::strerror(errno));
  return line;
}

void RunWriter::replace_metrics(const std::string& text) const {
  write_file_atomic(path("metrics.jsonl"), text);
}

void RunWriter::write_summary(const nlohmann::json& summary) const {
  write_file_atomic(path("summary.json"), summary.dump(2) + "\n");
}

}  // namespace fullbatch
