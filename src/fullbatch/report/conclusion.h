#pragma once
// The report's conclusion: what the numbers say about differences between rows, and no more. The
// best full-batch row is set against the best SGD row (and against the best SGD row with as many
// passes over the data, when that is another one), and each full-batch row against the one
// before it in table order (what each step of the ladder added); every difference of mean
// validation accuracy comes with a 95% confidence interval, a bootstrap interval and Welch's
// p-value, and is called a lead only when p < 0.05. A row is SGD or full batch by its config's
// hyp.train_stochastic; the arithmetic is statistics.h's.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/report/aggregate.h"
#include "fullbatch/report/statistics.h"

namespace fullbatch {

// Below this two-sided p-value a difference is called significant.
inline constexpr double kSignificanceLevel = 0.05;

// Row `a` against row `b` (indices into the rows) in mean validation accuracy, a minus b, in
// percentage points.
struct RowComparison {
  std::size_t a = 0, b = 0;
  double difference = 0;
  std::optional<WelchTest> welch;  // 95% interval; nullopt when a side has fewer than two seeds
  Interval bootstrap;              // 95% percentile bootstrap; NaN bounds when welch is nullopt
};

RowComparison compare_rows(const std::vector<ReportRow>& rows, std::size_t a, std::size_t b);

// "not significantly different at the 5% level (p = 0.39)", `a_ahead` or `b_ahead` followed by
// " (p = 0.012)" when p < 0.05, or "n/a (1 seed)".
std::string verdict_text(const RowComparison& c, const std::string& a_ahead,
                         const std::string& b_ahead);

struct Conclusion {
  std::optional<RowComparison> headline;  // best full batch (a) against best SGD (b)
  // When the best SGD row made another number of passes: the best full-batch row (a) against
  // the best SGD row with its number of passes (b), i.e. at equal compute.
  std::optional<RowComparison> equal_compute;
  std::string equal_compute_text;
  std::vector<RowComparison> ladder;  // consecutive full-batch rows, later (a) vs earlier (b)
  std::string headline_text;          // one paragraph; says why when there is no headline
  // Whether the headline compares rows that both fitted their training data (a generalization
  // comparison); false when no fitted row of a kind exists and the best rows of each kind are
  // compared in accuracy only, worded as such.
  bool generalization = false;
  std::string under_trained_text;         // the rows that did not fit, by name; empty when all did
  std::string ladder_intro;               // empty when fewer than two full-batch rows
  std::vector<std::string> ladder_steps;  // one line per ladder comparison
  std::string method_note;  // how the intervals and verdicts are made; empty when nothing tested
};

// Rows with a validation accuracy take part; the others are left out of every comparison.
Conclusion conclude(const std::vector<ReportRow>& rows, const std::vector<RunRecord>& runs);

// The conclusion as Markdown (also printed to the console): the headline paragraph, the ladder's
// intro with one "- " line per step, then the method note.
std::string conclusion_markdown(const Conclusion& c);

}  // namespace fullbatch
