// Seeds to rows and metrics to curves over seeds (declared in aggregate.h). The rules for missing
// values live here: a run without final numbers falls back to its newest logged ones.
#include "fullbatch/report/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fullbatch/report/statistics.h"

namespace fullbatch {

using detail::json_number;
using detail::json_text;
using nlohmann::json;

namespace {

// What the seeds of one row contribute, before averaging.
struct SeedValues {
  std::vector<long> steps;
  std::vector<double> passes, images, val, train, train_loss, time;
  std::size_t fitted = 0;  // seeds whose final training accuracy reached kFittedTrainAccuracy
  std::size_t no_val = 0;  // seeds without a validation accuracy
};

// Rows named after the runs, in order of first appearance, each listing its runs.
std::vector<ReportRow> group_by_name(const std::vector<RunRecord>& runs) {
  std::vector<ReportRow> rows;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::string n = runs[i].name();
    auto [it, fresh] = index.emplace(n, rows.size());
    if (fresh) {
      rows.emplace_back();
      rows.back().name = n;
    }
    rows[it->second].runs.push_back(i);
  }
  return rows;
}

// The summary's value, else the last metrics line's; NaN when neither has one.
double summary_or_last(const RunRecord& r, const char* summary_key, const char* metric_key) {
  double v = json_number(r.summary, summary_key);
  if (!std::isfinite(v) && !r.metrics.empty()) v = json_number(r.metrics.back(), metric_key);
  return v;
}

// The summary's final value, else the newest logged one: a running or crashed run may not have
// final_* fields yet, and its newest logged value is the honest stand-in.
double latest(const RunRecord& r, const char* summary_key, const char* metric_key) {
  double v = json_number(r.summary, summary_key);
  if (std::isfinite(v)) return v;
  for (auto it = r.metrics.rbegin(); it != r.metrics.rend(); ++it) {
    double m = json_number(*it, metric_key);
    if (std::isfinite(m)) return m;
  }
  return kNaN;
}

bool push_if_finite(std::vector<double>& xs, double v) {
  if (!std::isfinite(v)) return false;
  xs.push_back(v);
  return true;
}

void add_seed(const RunRecord& r, ReportRow& row, SeedValues& v) {
  const double steps = summary_or_last(r, "steps", "step");
  v.steps.push_back(std::lround(std::isfinite(steps) ? steps : 0));
  const double passes = summary_or_last(r, "epochs", "epoch");
  push_if_finite(v.passes, passes);
  push_if_finite(v.images, passes * json_number(r.summary, "train_images"));
  if (!push_if_finite(v.val, latest(r, "final_val_accuracy", "val_accuracy"))) ++v.no_val;
  const double train = latest(r, "final_train_accuracy", "train_accuracy");
  push_if_finite(v.train, train);
  if (std::isfinite(train) && train >= kFittedTrainAccuracy) ++v.fitted;
  push_if_finite(v.train_loss, latest(r, "final_train_loss", "train_loss"));
  push_if_finite(v.time, latest(r, "total_time_s", "time_s"));
  const std::string status = json_text(r.summary, "status");
  if (status == "diverged") ++row.diverged;
  if (status == "running") ++row.running;
  if (!row.stochastic) row.stochastic = r.stochastic();
}

// "completed", or what kept seeds from completing: "1/3 diverged, 1/3 running".
std::string status_text(const ReportRow& row, std::size_t no_val) {
  const std::string of = "/" + std::to_string(row.runs.size());
  std::vector<std::string> parts;
  if (row.diverged) parts.push_back(std::to_string(row.diverged) + of + " diverged");
  if (row.running) parts.push_back(std::to_string(row.running) + of + " running");
  if (no_val) parts.push_back(std::to_string(no_val) + of + " without val. acc.");
  if (parts.empty()) return "completed";
  std::string status;
  for (std::size_t i = 0; i < parts.size(); ++i) status += (i ? ", " : "") + parts[i];
  return status;
}

void finish_row(ReportRow& row, const SeedValues& v) {
  row.steps_min = *std::min_element(v.steps.begin(), v.steps.end());
  row.steps_max = *std::max_element(v.steps.begin(), v.steps.end());
  row.passes = mean(v.passes);
  row.images = mean(v.images);
  row.val_acc = v.val;
  row.val_acc_mean = mean(v.val);
  row.val_acc_std = sample_std(v.val);
  row.train_acc_mean = mean(v.train);
  row.train_loss_mean = mean(v.train_loss);
  row.fitted_seeds = v.fitted;
  row.time_s_mean = mean(v.time);
  row.status = status_text(row, v.no_val);
}

// What the seeds logged at one step of a curve.
class StepValues {
 public:
  void add(double x, double v) {
    x_.add(x);
    v_.add(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }
  SeedCurvePoint point() const { return {x_.value(), v_.value(), min_, max_, v_.count()}; }

 private:
  RunningMean x_, v_;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace

std::vector<ReportRow> summarize_runs(const std::vector<RunRecord>& runs,
                                      const std::map<std::string, std::string>& paper_numbers) {
  std::vector<ReportRow> rows = group_by_name(runs);
  for (ReportRow& row : rows) {
    SeedValues values;
    for (std::size_t idx : row.runs) add_seed(runs[idx], row, values);
    finish_row(row, values);
    auto p = paper_numbers.find(row.name);
    if (p != paper_numbers.end()) row.paper = p->second;
  }
  return rows;
}

std::vector<SeedCurvePoint> curve_over_seeds(const ReportRow& row,
                                             const std::vector<RunRecord>& runs, const char* key,
                                             const char* x_key) {
  std::map<double, StepValues> by_step;
  for (std::size_t idx : row.runs) {
    for (const json& m : runs[idx].metrics) {
      const double step = json_number(m, "step"), x = json_number(m, x_key);
      const double v = json_number(m, key);
      if (std::isfinite(step) && std::isfinite(x) && std::isfinite(v)) by_step[step].add(x, v);
    }
  }
  std::vector<SeedCurvePoint> points;
  points.reserve(by_step.size());
  for (const auto& entry : by_step) points.push_back(entry.second.point());
  return points;
}

std::string fitted_text(const ReportRow& row) {
  if (row.fitted()) return "yes";
  if (row.fitted_seeds == 0) return "no";
  return std::to_string(row.fitted_seeds) + "/" + std::to_string(row.runs.size());
}

std::string steps_text(const ReportRow& row) {
  if (row.steps_min == row.steps_max) return std::to_string(row.steps_min);
  return std::to_string(row.steps_min) + "-" + std::to_string(row.steps_max);
}

}  // namespace fullbatch
