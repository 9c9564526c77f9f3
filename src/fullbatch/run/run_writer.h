#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "fullbatch/config/config.h"

namespace fullbatch {

// The run directory: config.yaml, metrics.jsonl (one line per step, appended and flushed as
// the run goes), summary.json and model.pt. Only rank 0 of a run owns one.
class RunWriter {
 public:
  // Creates the folder. Refuses a folder that already holds a run unless `resume` is set, so a
  // new run never overwrites results already written.
  RunWriter(std::string dir, bool resume);

  // Throws UserError when `dir` already holds a run and `resume` is not set.
  static void check_available(const std::string& dir, bool resume);

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const;

  void write_config(const Config& config) const;
  // Appends one line; returns the exact text written, so a checkpoint can hold the same bytes.
  std::string append_metrics(const nlohmann::json& record) const;
  // Replaces metrics.jsonl atomically (a resumed run cuts it back to its checkpoint's step).
  void replace_metrics(const std::string& text) const;
  void write_summary(const nlohmann::json& summary) const;

 private:
  std::string dir_;
};

}  // namespace fullbatch
