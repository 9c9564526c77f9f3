// Means, standard deviations, Student's t distribution, Welch's test and the bootstrap for the
// report (declared in statistics.h). Each statistic is computed the way its comment in the header
// states, with nothing done on the side; the special functions are written out here, so the
// report needs no numerics library.
#include "fullbatch/report/statistics.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace fullbatch {

namespace {


constexpr double kTiny = 1e-300;

double away_from_zero(double v) {
  return std::fabs(v) < kTiny ? kTiny : v;
}

// One step of the modified Lentz method for a continued fraction: given the next partial
// numerator, updates the running ratios c and d and returns the factor by which the fraction's
// value changes.
double lentz_step(double numerator, double& c, double& d) {
  d = 1 / away_from_zero(1 + numerator * d);
  c = away_from_zero(1 + numerator / c);
  return c * d;
}

// The continued fraction 1 / (1 + n_1 / (1 + n_2 / (1 + ...))) that gives I_x(a, b) up to a
// prefactor, converging quickly for x < (a + 1) / (a + b + 2). Its partial numerators are
//   n_1 = -(a + b) x / (a + 1), then for m = 1, 2, ... in turn
//   m (b - m) x / ((a + 2m - 1)(a + 2m))  and  -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
double beta_fraction(double a, double b, double x) {
  constexpr int kMaxTerms = 500;
  constexpr double kRelTol = 1e-15;
  double c = 1, d = 1 / away_from_zero(1 - (a + b) * x / (a + 1));
  double value = d;
  for (int m = 1; m <= kMaxTerms; ++m) {
    const double two_m = 2.0 * m;
    value *= lentz_step(m * (b - m) * x / ((a + two_m - 1) * (a + two_m)), c, d);
    const double change =
        lentz_step(-(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1)), c, d);
    value *= change;
    if (std::fabs(change - 1) < kRelTol) break;
  }
  return value;
}

// x^a (1 - x)^b / (a B(a, b)), the factor in front of the continued fraction.
double beta_prefactor(double a, double b, double x) {
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  return std::exp(log_front) / a;
}

// Sum of squared deviations from the mean over n - 1.
double sample_variance(const std::vector<double>& xs) {
  const double s = sample_std(xs);
  return s * s;
}

// The mean of xs.size() values drawn from xs with replacement. `rng() % n` rather than
// std::uniform_int_distribution, whose draws differ between standard libraries; the bias is
// below n / 2^64.
double resampled_mean(const std::vector<double>& xs, std::mt19937_64& rng) {
  double sum = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) sum += xs[rng() % xs.size()];
  return sum / static_cast<double>(xs.size());
}

// The interval for a constant difference: no spread at all.
WelchTest constant_samples_test(double difference, std::size_t na, std::size_t nb) {
  WelchTest w;
  w.difference = difference;
  w.t = difference == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), difference);
  w.df = static_cast<double>(na + nb - 2);
  w.p = difference == 0 ? 1 : 0;
  w.ci = {difference, difference};
  return w;
}

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

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0 && b > 0 && x >= 0 && x <= 1)) return kNaN;
  if (x == 0 || x == 1) return x;
  // The fraction converges fast only below the distribution's bulk; above it, use the symmetry
  // I_x(a, b) = 1 - I_{1-x}(b, a).
  if (x < (a + 1) / (a + b + 2)) return beta_prefactor(a, b, x) * beta_fraction(a, b, x);
  return 1 - beta_prefactor(b, a, 1 - x) * beta_fraction(b, a, 1 - x);
}

// With x = df / (df + t^2), P(|T| >= |t|) = I_x(df / 2, 1 / 2): the t distribution's tails are a
// beta distribution in disguise.
double student_t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0;
  return regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

double student_t_cdf(double t, double df) {
  const double tails = student_t_two_sided_p(t, df);
  return t >= 0 ? 1 - tails / 2 : tails / 2;
}

double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1 && df > 0)) return kNaN;
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, df) < p && hi < 1e300) hi *= 2;
  for (int i = 0; i < 300 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = (lo + hi) / 2;
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

std::optional<WelchTest> welch_test(const std::vector<double>& a, const std::vector<double>& b,
                                    double level) {
  if (a.size() < 2 || b.size() < 2) return std::nullopt;
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = sample_variance(a) / na, vb = sample_variance(b) / nb;  // squared std errors
  const double difference = mean(a) - mean(b);
  if (va + vb == 0) return constant_samples_test(difference, a.size(), b.size());
  WelchTest w;
  w.difference = difference;
  const double se = std::sqrt(va + vb);
  w.t = difference / se;
  w.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  w.p = student_t_two_sided_p(w.t, w.df);
  const double half_width = student_t_quantile(0.5 + level / 2, w.df) * se;
  w.ci = {difference - half_width, difference + half_width};
  return w;
}

Interval bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& options) {
  if (a.size() < 2 || b.size() < 2 || options.resamples == 0) return {};
  std::mt19937_64 rng(options.seed);
  std::vector<double> differences(options.resamples);
  for (double& d : differences) {
    const double from_a = resampled_mean(a, rng);
    d = from_a - resampled_mean(b, rng);
  }
  std::sort(differences.begin(), differences.end());
  const double tail = (1 - options.level) / 2;
  return {quantile_of_sorted(differences, tail), quantile_of_sorted(differences, 1 - tail)};
}

double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty() || !(q >= 0 && q <= 1)) return kNaN;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(pos));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(below);
  return sorted[below] + frac * (sorted[above] - sorted[below]);
}

}  // namespace fullbatch
