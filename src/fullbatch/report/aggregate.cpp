// Seeds to rows, rows to a verdict, metrics to mean curves (declared in aggregate.h). The rules
// for missing values live here: a run without final numbers falls back to its newest logged ones.
#include "fullbatch/report/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "fullbatch/report/format.h"
#include "fullbatch/report/statistics.h"

namespace fullbatch {

using detail::format_compact;
using detail::format_fixed;
using detail::json_number;
using detail::json_text;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What the seeds of one row contribute, before averaging.
struct SeedValues {
  std::vector<long> steps;
  std::vector<double> epochs, val, train, time;
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
  push_if_finite(v.epochs, summary_or_last(r, "epochs", "epoch"));
  if (!push_if_finite(v.val, latest(r, "final_val_accuracy", "val_accuracy"))) ++v.no_val;
  push_if_finite(v.train, latest(r, "final_train_accuracy", "train_accuracy"));
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
  row.epochs = mean(v.epochs);
  row.val_acc_mean = mean(v.val);
  row.val_acc_std = sample_std(v.val);
  row.val_acc_count = v.val.size();
  row.train_acc_mean = mean(v.train);
  row.time_s_mean = mean(v.time);
  row.status = status_text(row, v.no_val);
}

std::string row_label(const ReportRow& r) {
  return r.name + " (" + std::to_string(r.val_acc_count) +
         (r.val_acc_count == 1 ? " seed" : " seeds") + ")";
}

// The rows the verdict compares; either may be null.
struct Contenders {
  const ReportRow* sgd = nullptr;      // the first SGD row: the caller orders the ladder
  const ReportRow* best_fb = nullptr;  // the full-batch row with the best mean val. accuracy
};

Contenders find_contenders(const std::vector<ReportRow>& rows) {
  Contenders c;
  for (const ReportRow& r : rows) {
    if (!std::isfinite(r.val_acc_mean) || !r.stochastic) continue;
    if (*r.stochastic) {
      if (!c.sgd) c.sgd = &r;
    } else if (!c.best_fb || r.val_acc_mean > c.best_fb->val_acc_mean) {
      c.best_fb = &r;
    }
  }
  return c;
}

// The scale of the experiment, because a gap that closes on 512 images says little about 50,000:
// " (512 training images of cifar10, 20 steps)", or "" when the summary does not say.
std::string scale_text(const ReportRow& row, const std::vector<RunRecord>& runs) {
  const RunRecord& any = runs[row.runs.front()];
  const double images = json_number(any.summary, "train_images");
  if (!std::isfinite(images)) return "";
  const std::string dataset = json_text(any.summary, "dataset");
  return " (" + format_compact(images, 0) + " training images" +
         (dataset.empty() ? "" : " of " + dataset) + ", " + steps_text(row) + " steps)";
}

// How the gap compares with the spread over seeds, ending the first sentence.
std::string spread_text(const ReportRow& fb, const ReportRow& sgd, const std::string& scale) {
  if (!std::isfinite(fb.val_acc_std) || !std::isfinite(sgd.val_acc_std)) {
    const std::string unknown =
        ". With a single seed in a row the spread over seeds is unknown, so this report does not "
        "say whether the gap closes";
    return unknown + scale + ".";
  }
  const double gap = sgd.val_acc_mean - fb.val_acc_mean;
  const double tol = fb.val_acc_std + sgd.val_acc_std;
  const std::string sum = " the sum of the two standard deviations (" + format_fixed(tol, 2) + ")";
  if (gap > tol)
    return ", more than" + sum + ", so the gap does not close at this scale" + scale + ".";
  return (gap >= -tol ? ", within" : ", in favour of full batch by more than") + sum +
         ", so the gap closes at this scale" + scale + ".";
}

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

std::string comparison_sentence(const std::vector<ReportRow>& rows,
                                const std::vector<RunRecord>& runs) {
  const Contenders c = find_contenders(rows);
  if (!c.sgd)
    return "No SGD baseline row (config hyp.train_stochastic: true, with a validation accuracy) "
           "is among these runs, so full batch is not compared with SGD.";
  if (!c.best_fb)
    return "No full-batch row (config hyp.train_stochastic: false, with a validation accuracy) "
           "is among these runs, so full batch is not compared with SGD.";
  const ReportRow &fb = *c.best_fb, &sgd = *c.sgd;
  const double gap = sgd.val_acc_mean - fb.val_acc_mean;
  std::ostringstream s;
  s << "The best full-batch row, " << row_label(fb) << ", reaches "
    << format_fixed(fb.val_acc_mean, 2) << "% mean validation accuracy against "
    << format_fixed(sgd.val_acc_mean, 2) << "% for the SGD baseline " << row_label(sgd) << ": "
    << "full batch is " << format_fixed(gap >= 0 ? gap : -gap, 2)
    << (gap >= 0 ? " points behind" : " points ahead")
    << spread_text(fb, sgd, scale_text(fb, runs));
  if (fb.diverged || sgd.diverged)
    s << " Diverged seeds are included as reported (" << fb.name << ": " << fb.diverged << ", "
      << sgd.name << ": " << sgd.diverged << ").";
  return s.str();
}

std::vector<std::pair<double, double>> mean_curve(const ReportRow& row,
                                                  const std::vector<RunRecord>& runs,
                                                  const char* key) {
  std::map<double, RunningMean> by_step;
  for (std::size_t idx : row.runs) {
    for (const json& m : runs[idx].metrics) {
      const double step = json_number(m, "step"), v = json_number(m, key);
      if (std::isfinite(step) && std::isfinite(v)) by_step[step].add(v);
    }
  }
  std::vector<std::pair<double, double>> points;
  points.reserve(by_step.size());
  for (const auto& [step, m] : by_step) points.emplace_back(step, m.value());
  return points;
}

std::string steps_text(const ReportRow& row) {
  if (row.steps_min == row.steps_max) return std::to_string(row.steps_min);
  return std::to_string(row.steps_min) + "-" + std::to_string(row.steps_max);
}

}  // namespace fullbatch
