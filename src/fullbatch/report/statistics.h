#pragma once
// The arithmetic behind the report's numbers: means over seeds, the sample standard deviation the
// table prints as "mean ± std", the running means behind the curves, and what decides whether two
// rows differ: Welch's two-sample t-test with its confidence interval (Student's t distribution,
// through the regularized incomplete beta function) and a seeded percentile bootstrap. Kept apart
// from loading and writing so that every statistic the report states can be checked in one place.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace fullbatch {

// "No value": a missing number in a summary, a mean of nothing, a gap in a curve.
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1; NaN outside.
double regularized_incomplete_beta(double a, double b, double x);

// P(T <= t) for Student's t distribution with `df` > 0 degrees of freedom (df need not be whole).
double student_t_cdf(double t, double df);

// P(|T| >= |t|): the two-sided p-value of a t statistic.
double student_t_two_sided_p(double t, double df);

// The t with student_t_cdf(t, df) == p, for 0 < p < 1, found by bisection; NaN outside.
double student_t_quantile(double p, double df);

// A range of values; NaN bounds when unknown.
struct Interval {
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
};

// Welch's two-sample t-test (unequal variances) of mean(a) - mean(b).
struct WelchTest {
  double difference = 0;  // mean(a) - mean(b)
  double t = 0;           // difference / its standard error
  double df = 0;          // Welch-Satterthwaite degrees of freedom
  double p = 1;           // two-sided
  Interval ci;            // confidence interval for the difference, at the level asked for
};

// nullopt when a or b has fewer than two values (no variance, no test). When both samples are
// constant the standard error is 0: t is 0 and p is 1 if the means agree, else t is ±inf and p is
// 0; df is then na + nb - 2 and the interval is the difference itself.
std::optional<WelchTest> welch_test(const std::vector<double>& a, const std::vector<double>& b,
                                    double level = 0.95);

struct BootstrapOptions {
  std::size_t resamples = 10000;
  std::uint64_t seed = 2022;
  double level = 0.95;
};

// Percentile bootstrap interval for mean(a) - mean(b): every resample draws a.size() values from
// a and b.size() from b, with replacement, from one std::mt19937_64 seeded with `seed`, so the same
// inputs always give the same interval. NaN bounds when a or b has fewer than two values.
Interval bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& options = {});

// The q-quantile (0 <= q <= 1) of ascending values, linear between neighbours; NaN when empty.
double quantile_of_sorted(const std::vector<double>& sorted, double q);

}  // namespace fullbatch
