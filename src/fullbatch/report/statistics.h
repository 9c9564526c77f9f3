#pragma once
// The arithmetic behind the report's numbers: means over seeds, the sample standard deviation the
// table prints as "mean ± std", and the running means behind the per-step curves. Kept apart from
// loading and writing so that every statistic the report states can be checked in one place, and
// grown there (significance tests, confidence intervals) without touching the writers.
#include <cstddef>
#include <vector>

namespace fullbatch {

// Arithmetic mean; NaN for no values.
double mean(const std::vector<double>& xs);

// Sample standard deviation (n - 1 in the denominator); NaN with fewer than two values.
double sample_std(const std::vector<double>& xs);

// A mean built one value at a time, e.g. the mean over seeds at one step of a curve.
class RunningMean {
 public:
  void add(double x) {
    sum_ += x;
    ++count_;
  }
  double value() const;  // NaN before the first add
  std::size_t count() const { return count_; }

 private:
  double sum_ = 0;
  std::size_t count_ = 0;
};

}  // namespace fullbatch
