#include "fullbatch/report/target_cost.h"

#include <cmath>

#include "fullbatch/report/format.h"
#include "fullbatch/report/statistics.h"

namespace fullbatch {
namespace {

// "mean +- sample std" over the seeds that reached the target ("-" for none).
std::string spread_text(const std::vector<double>& xs, int decimals) {
  if (xs.empty()) return "-";
  std::string text = format_fixed(mean(xs), decimals);
  return xs.size() > 1 ? text + " +- " + format_fixed(sample_std(xs), decimals) : text;
}

// The mean, or the sample std (needs two values); null where undefined.
nlohmann::json statistic(const std::vector<double>& xs, bool std_dev) {
  if (xs.empty() || (std_dev && xs.size() < 2)) return nullptr;
  const double v = std_dev ? sample_std(xs) : mean(xs);
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

std::vector<TargetCost> target_costs(const std::vector<ReportRow>& rows,
                                     const std::vector<RunRecord>& runs) {
  std::vector<TargetCost> out;
  for (const ReportRow& row : rows) {
    TargetCost cost{row.name, 0, row.runs.size(), {}, {}};
    for (std::size_t i : row.runs) {
      const nlohmann::json& s = runs[i].summary;
      const double t = detail::json_number(s, "stop_at_val_accuracy");
      if (!std::isfinite(t)) continue;
      cost.target = t;
      if (s.value("reached_val_accuracy", false)) {
        cost.passes.push_back(detail::json_number(s, "passes_to_accuracy"));
        cost.times.push_back(detail::json_number(s, "time_to_accuracy_s"));
      }
    }
    if (cost.target > 0) out.push_back(std::move(cost));
  }
  return out;
}

const std::vector<std::string>& target_cost_columns() {
  static const std::vector<std::string> columns = {"row", "target %", "reached", "passes",
                                                   "training time (s)"};
  return columns;
}

std::vector<std::string> target_cost_cells(const TargetCost& c) {
  return {c.row, format_fixed(c.target, 2),
          std::to_string(c.passes.size()) + "/" + std::to_string(c.seeds), spread_text(c.passes, 1),
          spread_text(c.times, 1)};
}

const char* target_cost_note() {
  return "Over the seeds that reached the target at an evaluation (every "
         "impl.validate_every_nth_step steps); passes count every gradient evaluation; time "
         "excludes evaluation. These runs stopped at the target, so the accuracies above are "
         "those at the stop: compare such rows by this table.";
}

nlohmann::json target_costs_json(const std::vector<TargetCost>& costs) {
  nlohmann::json out = nlohmann::json::array();
  for (const TargetCost& c : costs)
    out.push_back({{"row", c.row},
                   {"target", c.target},
                   {"seeds", c.seeds},
                   {"reached", c.passes.size()},
                   {"passes_mean", statistic(c.passes, false)},
                   {"passes_std", statistic(c.passes, true)},
                   {"time_s_mean", statistic(c.times, false)},
                   {"time_s_std", statistic(c.times, true)}});
  return out;
}

}  // namespace fullbatch
