#pragma once
// Reading run directories for the report: which folders given on the command line are runs, and
// what one run holds (its summary, its config as JSON and its metrics log), tolerant of runs that
// crashed or are still going. File names come from RunDir (run/run_dir.h), the one owner of the
// run directory's layout; nothing here writes.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fullbatch {

// One run directory as written by the trainer.
struct RunRecord {
  std::string dir;
  nlohmann::json summary;               // the summary object
  nlohmann::json config;                // the config as JSON; null when absent or unreadable
  std::vector<nlohmann::json> metrics;  // parsed metrics lines (objects only)
  std::vector<std::string> warnings;    // skipped lines, unreadable config, ...

  // Row key: summary "name", else config "name", else the directory's base name.
  std::string name() const;
  // config hyp.train_stochastic; nullopt when the config does not say.
  std::optional<bool> stochastic() const;
};

// Reads one run directory. Throws UserError naming `dir` when it does not exist or when its
// summary or metrics log is missing or unusable. Unparsable metrics lines (a crash can truncate
// the last one) are skipped and recorded in `warnings`.
RunRecord load_run(const std::string& dir);

// Each path is a run directory (has a summary) or a parent of run directories, searched one or
// two levels deep and sorted by name within the parent. Order of `paths` is kept; a run met twice
// is kept once. Throws UserError for a path that does not exist or holds no runs.
std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths);

namespace detail {

// Field readers for summary and metrics objects that never throw. A number: NaN when missing or
// not a number. A text: the string, numbers and booleans as JSON text, else "".
double json_number(const nlohmann::json& obj, const char* key);
std::string json_text(const nlohmann::json& obj, const char* key);

}  // namespace detail

}  // namespace fullbatch
