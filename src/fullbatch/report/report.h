#pragma once
// Turns finished (or crashed, or still running) run directories into a comparison report in the
// shape of the paper's Table 2: one row per configuration, seeds aggregated, plus curves.
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace fullbatch {

// One run directory as written by the trainer (config.yaml, metrics.jsonl, summary.json).
struct RunRecord {
  std::string dir;
  nlohmann::json summary;               // object from summary.json
  nlohmann::json config;                // config.yaml as JSON; null when absent or unreadable
  std::vector<nlohmann::json> metrics;  // parsed metrics.jsonl lines (objects only)
  std::vector<std::string> warnings;    // skipped lines, unreadable config, ...

  // Row key: summary "name", else config "name", else the directory's base name.
  std::string name() const;
  // config hyp.train_stochastic; nullopt when the config does not say.
  std::optional<bool> stochastic() const;
};

// Reads one run directory. Throws UserError naming `dir` when it does not exist or when
// summary.json or metrics.jsonl is missing or unusable. Unparsable metrics lines (a crash can
// truncate the last one) are skipped and recorded in `warnings`.
RunRecord load_run(const std::string& dir);

// Each path is a run directory (has summary.json) or a parent of run directories, searched one
// or two levels deep and sorted by name within the parent. Order of `paths` is kept; a run met
// twice is kept once. Throws UserError for a path that does not exist or holds no runs.
std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths);

// One line of the table: all seeds of one configuration.
struct ReportRow {
  std::string name;
  std::vector<std::size_t> runs;  // indices into the run list given to summarize_runs
  long steps_min = 0, steps_max = 0;
  double epochs = 0;              // mean over seeds
  double val_acc_mean = 0;        // NaN when no seed has a value
  double val_acc_std = 0;         // sample std; NaN with fewer than two values
  std::size_t val_acc_count = 0;  // seeds that contributed to the mean
  double train_acc_mean = 0;      // NaN when no seed has a value
  double time_s_mean = 0;         // NaN when no seed has a value
  std::size_t diverged = 0, running = 0;
  std::optional<bool> stochastic;  // SGD (true) or full batch (false), from the config
  std::string status;              // "completed", "2/3 diverged", ...
  std::string paper;               // caller-supplied reference number, may be empty
};

// Groups runs by name in order of first appearance.
std::vector<ReportRow> summarize_runs(const std::vector<RunRecord>& runs,
                                      const std::map<std::string, std::string>& paper_numbers);

std::string format_markdown_table(const std::vector<ReportRow>& rows);

// One or two sentences comparing the best full-batch row with the SGD baseline row.
std::string comparison_sentence(const std::vector<ReportRow>& rows,
                                const std::vector<RunRecord>& runs);

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_y = false;  // non-positive y values are skipped on a log axis
  std::vector<PlotSeries> series;
};

// A standalone SVG document (line chart with axes, ticks, labels, title and legend).
std::string render_svg_plot(const PlotSpec& spec);

// Writes report.md, report.csv, report.json, report.html and one .svg per curve into `out_dir`
// (created if needed), prints warnings and the Markdown table to `console`, returns 0.
// Throws UserError for unusable inputs or an unwritable `out_dir`.
int write_report(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                 const std::map<std::string, std::string>& paper_numbers, std::ostream& console);

}  // namespace fullbatch
