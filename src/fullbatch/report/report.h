#pragma once
// Turns finished (or crashed, or still running) run directories into a comparison report in the
// shape of the paper's Table 2: one row per configuration, seeds aggregated, plus curves. This
// header is the report's public face for apps and tests; the work is split by concern, each part
// depending only on those listed above it:
//   runs.h        reading run directories (their layout belongs to run/run_dir.h)
//   statistics.h  means, standard deviations, Welch's t-test, the bootstrap
//   svg_plot.h    standalone SVG line charts with shaded bands
//   aggregate.h   seeds -> table rows, curves over seeds
//   conclusion.h  full batch vs SGD and each step of the ladder, with intervals and p-values
//   writers.cpp   the Markdown, CSV, JSON and HTML files, declared below
// format.h holds the number formatting and escaping they share and is internal to report/.
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "fullbatch/report/aggregate.h"
#include "fullbatch/report/conclusion.h"
#include "fullbatch/report/runs.h"
#include "fullbatch/report/svg_plot.h"

namespace fullbatch {

std::string format_markdown_table(const std::vector<ReportRow>& rows);

struct ReportOptions {
  // The plots' x axis: wall time in seconds (mean over seeds at each step) instead of passes over
  // the training data (the metrics' epoch).
  bool x_wall_time = false;
};

// Writes report.md, report.csv, report.json, report.html and one .svg per curve into `out_dir`
// (created if needed), prints warnings, the Markdown table and the conclusion to `console`,
// returns 0. Throws UserError for unusable inputs or an unwritable `out_dir`.
int write_report(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                 const std::map<std::string, std::string>& paper_numbers, std::ostream& console,
                 const ReportOptions& options = {});

}  // namespace fullbatch
