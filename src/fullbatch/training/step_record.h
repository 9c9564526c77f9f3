#pragma once
// What one training step reports: a line of metrics.jsonl and of the progress display. A step is
// one full-batch pass, or one SGD epoch.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>

namespace fullbatch {

struct StepRecord {
  int64_t step = 0;  // 1-based
  double epoch = 0;  // passes over the training samples so far
  double lr = 0;
  double train_loss = 0;
  double train_accuracy = 0;  // percent
  double grad_norm = 0;       // full gradient before clipping (SGD: mean over the epoch's steps)
  int64_t clipped_blocks = 0;
  double step_time_s = 0;
  double time_s = 0;  // cumulative training wall time
  double images_per_s = 0;
  std::optional<double> val_loss;
  std::optional<double> val_accuracy;  // percent
  std::optional<double> reached_val_accuracy;  // hyp.stop_at_val_accuracy, on the step that reached it

  // JSON has no NaN/inf: a diverged value is written as null rather than corrupting the file.
  nlohmann::json to_json() const;
};

}  // namespace fullbatch
