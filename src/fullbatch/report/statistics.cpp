// Means and sample standard deviations for the report (declared in statistics.h). Each
// statistic is computed the way its comment in the header states, with nothing done on the side.
#include "fullbatch/report/statistics.h"

#include <cmath>
#include <limits>

namespace fullbatch {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

double mean(const std::vector<double>& xs) {
  RunningMean m;
  for (double x : xs) m.add(x);
  return m.value();
}

double sample_std(const std::vector<double>& xs) {
  if (xs.size() < 2) return kNaN;
  const double m = mean(xs);
  double ss = 0;
  for (double x : xs) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(xs.size() - 1));
}

double RunningMean::value() const {
  if (count_ == 0) return kNaN;
  return sum_ / static_cast<double>(count_);
}

}  // namespace fullbatch
