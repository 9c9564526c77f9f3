#pragma once
// The run directory: the one place that knows its layout. A run directory holds
//   config.yaml     the resolved config (pass it back with --config to rerun)
//   metrics.jsonl   one JSON line per step, appended and flushed as the run goes
//   summary.json    status ("running", "completed", "diverged", "failed") and final numbers
//   model.pt        the final weights, a pickled dict that Python's torch.load reads
//   checkpoints/    step_NNNNNN.ckpt, the newest few (run/checkpoint.h)
// Training, resume, sweeps, reports and analyses all go through RunDir, so a file name or the
// meaning of "finished" is written down once.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "fullbatch/config/config.h"

namespace fullbatch {

class RunDir {
 public:
  // A path names a run directory (implicit, so a folder's path can be passed where a run is meant).
  RunDir(std::string path);  // NOLINT(google-explicit-constructor)

  // runs/<name>_s<seed>: where `fullbatch train` writes when no --out is given.
  static RunDir default_for(const Config& config);
  // <parent>/<row>_s<seed>: a sweep's run of one row and seed.
  static RunDir in_sweep(const std::string& parent, const std::string& row, uint64_t seed);

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const;  // path/name
  std::string config_file() const { return file("config.yaml"); }
  std::string metrics_file() const { return file("metrics.jsonl"); }
  std::string summary_file() const { return file("summary.json"); }
  std::string weights_file() const { return file("model.pt"); }
  std::string checkpoint_folder() const { return file("checkpoints"); }
  std::string checkpoint_file(int64_t step) const;  // checkpoints/step_NNNNNN.ckpt

  bool exists() const;
  // A run has started here: config.yaml or summary.json exists (config.yaml alone is a run that
  // crashed early, still not to be overwritten).
  bool holds_run() const;
  // summary.json's status; "running" for an unreadable summary (a crash mid-write cannot leave
  // one, but a user's edit can), "" when there is none.
  std::string status() const;
  // Completed or diverged: a sweep does not run it again.
  bool finished() const;
  std::optional<nlohmann::json> read_summary() const;

  // Throws UserError when the folder already holds a run and `resume` is not set, so a new run
  // never overwrites results already written.
  void check_available(bool resume) const;
  // check_available, then creates the folder (and parents).
  void create(bool resume) const;

  void write_config(const Config& config) const;
  // Appends one line and flushes; returns the exact text written, so a checkpoint can hold the
  // same bytes.
  std::string append_metrics(const nlohmann::json& record) const;
  // Replaces metrics.jsonl atomically (a resumed run cuts it back to its checkpoint's step).
  void replace_metrics(const std::string& text) const;
  void write_summary(const nlohmann::json& summary) const;

 private:
  std::string path_;
};

}  // namespace fullbatch
