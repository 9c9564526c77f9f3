#pragma once
// The cost to reach a target accuracy (hyp.stop_at_val_accuracy), per table row: how many seeds
// reached it and after how many passes over the data and how much training time, so methods can
// be compared at equal accuracy. Computed once from the loaded runs; writers.cpp renders it into
// report.md and report.html, and target_costs_json into report.json.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fullbatch/report/aggregate.h"
#include "fullbatch/report/runs.h"

namespace fullbatch {

struct TargetCost {
  std::string row;
  double target = 0;                  // % validation accuracy
  std::size_t seeds = 0;              // runs in the row
  std::vector<double> passes, times;  // one each per seed that reached the target
};

// The rows whose runs had a target, in table order.
std::vector<TargetCost> target_costs(const std::vector<ReportRow>& rows,
                                     const std::vector<RunRecord>& runs);

// The table: its column titles, one row's cells (not yet escaped), and the note under it.
const std::vector<std::string>& target_cost_columns();
std::vector<std::string> target_cost_cells(const TargetCost& cost);
const char* target_cost_note();

// report.json's "time_to_accuracy": per row the target, seeds, how many reached it, and mean and
// sample std of passes and time over those (null where undefined).
nlohmann::json target_costs_json(const std::vector<TargetCost>& costs);

}  // namespace fullbatch
