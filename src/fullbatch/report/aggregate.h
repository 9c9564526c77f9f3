#pragma once
// From runs to results: groups the seeds of one configuration into a table row (means, spread,
// step range, status), averages their curves step by step, and words the headline comparison of
// the best full-batch row with the SGD baseline. Pure functions of loaded runs: reading is
// runs.h's job, the arithmetic statistics.h's, and writing files writers.cpp's.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/report/runs.h"

namespace fullbatch {

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

// One or two sentences comparing the best full-batch row with the SGD baseline row.
std::string comparison_sentence(const std::vector<ReportRow>& rows,
                                const std::vector<RunRecord>& runs);

// Mean over the seeds of `row` of metric `key` at every step where at least one seed has a usable
// value, as (step, mean) in step order. Seeds that stopped early (crash, divergence) simply stop
// contributing.
std::vector<std::pair<double, double>> mean_curve(const ReportRow& row,
                                                  const std::vector<RunRecord>& runs,
                                                  const char* key);

// "20", or "18-20" when the seeds of the row stopped at different steps.
std::string steps_text(const ReportRow& row);

}  // namespace fullbatch
