#pragma once
// From runs to results: groups the seeds of one configuration into a table row (means, spread,
// step range, passes over the data, images processed, status) and gathers their curves step by
// step, with the range over seeds. Pure functions of loaded runs: reading is runs.h's job, the
// arithmetic statistics.h's, the comparisons between rows conclusion.h's, and writing files
// writers.cpp's.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/report/runs.h"

namespace fullbatch {

// A run has fitted its training data when its final training accuracy (the last step's pass over
// the training data, augmented as trained) is at least this, in %. The paper trains full batch
// until it fits (hyp.stop_at_full_training_accuracy); a generalization comparison between rows
// that did not is a comparison of under-training.
inline constexpr double kFittedTrainAccuracy = 99.0;

// One line of the table: all seeds of one configuration.
struct ReportRow {
  std::string name;
  std::vector<std::size_t> runs;  // indices into the run list given to summarize_runs
  long steps_min = 0, steps_max = 0;
  double passes = 0;             // passes over the training data (the metrics' epoch), seed mean
  double images = 0;             // training images processed, passes x train_images, seed mean
  std::vector<double> val_acc;   // each seed's val. accuracy, seeds without one left out
  double val_acc_mean = 0;       // NaN when no seed has a value
  double val_acc_std = 0;        // sample std; NaN with fewer than two values
  double train_acc_mean = 0;     // NaN when no seed has a value
  double train_loss_mean = 0;    // final training loss, seed mean; NaN when no seed has a value
  std::size_t fitted_seeds = 0;  // seeds with final training accuracy >= kFittedTrainAccuracy
  double time_s_mean = 0;        // NaN when no seed has a value
  std::size_t diverged = 0, running = 0;
  std::optional<bool> stochastic;  // SGD (true) or full batch (false), from the config
  std::string status;              // "completed", "2/3 diverged", ...
  std::string paper;               // caller-supplied reference number, may be empty

  // Every seed fitted its training data (and there is at least one seed).
  bool fitted() const { return !runs.empty() && fitted_seeds == runs.size(); }
  // Train minus val. accuracy, in points (the generalization gap); NaN when either is missing.
  double generalization_gap() const { return train_acc_mean - val_acc_mean; }
};

// "yes", "no" or "2/3": how many seeds of the row fitted.
std::string fitted_text(const ReportRow& row);

// Groups runs by name in order of first appearance.
std::vector<ReportRow> summarize_runs(const std::vector<RunRecord>& runs,
                                      const std::map<std::string, std::string>& paper_numbers);

// One point of a curve over the seeds of a row, at one step: the mean of the x value (passes
// or wall time) and the mean, least and greatest value of the metric over the seeds that logged
// both there.
struct SeedCurvePoint {
  double x = 0, mean = 0, min = 0, max = 0;
  std::size_t seeds = 0;
};

// The curve of metric `key` against `x_key` (e.g. "epoch", "time_s") over the seeds of `row`, in
// step order, at every step where at least one seed has both. Seeds that stopped early (crash,
// divergence) simply stop contributing.
std::vector<SeedCurvePoint> curve_over_seeds(const ReportRow& row,
                                             const std::vector<RunRecord>& runs, const char* key,
                                             const char* x_key);

// "20", or "18-20" when the seeds of the row stopped at different steps.
std::string steps_text(const ReportRow& row);

}  // namespace fullbatch
