// The conclusion's comparisons and their wording (declared in conclusion.h). Which rows are
// compared is decided first (find_best, full_batch_rows), then each comparison is tested, then
// worded; a verdict never says "ahead" unless Welch's p is below 5%.
#include "fullbatch/report/conclusion.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "fullbatch/report/format.h"

namespace fullbatch {

using detail::format_compact;
using detail::format_fixed;
using detail::json_number;
using detail::json_text;

namespace {

bool has_val_acc(const ReportRow& r) {
  return std::isfinite(r.val_acc_mean);
}

bool is_kind(const ReportRow& r, bool stochastic) {
  return has_val_acc(r) && r.stochastic && *r.stochastic == stochastic;
}

// The row of the kind with the best mean validation accuracy (the first on a tie), and how many
// rows of that kind competed. With `fitted_only`, only rows whose every seed fitted its training
// data compete: generalization is compared between fitted models only.
struct Best {
  std::optional<std::size_t> index;
  std::size_t candidates = 0;
};

Best find_best(const std::vector<ReportRow>& rows, bool stochastic, bool fitted_only) {
  Best best;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!is_kind(rows[i], stochastic) || (fitted_only && !rows[i].fitted())) continue;
    ++best.candidates;
    if (!best.index || rows[i].val_acc_mean > rows[*best.index].val_acc_mean) best.index = i;
  }
  return best;
}

std::vector<std::size_t> full_batch_rows(const std::vector<ReportRow>& rows) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (is_kind(rows[i], false)) out.push_back(i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numbers in words

std::string signed_points(double v) {
  return (v >= 0 ? "+" : "") + format_fixed(v, 2) + " points";
}

std::string interval_text(const Interval& i) {
  return "[" + format_fixed(i.lo, 2) + ", " + format_fixed(i.hi, 2) + "]";
}

// Two significant digits, more when rounding would carry the value across the 5% line.
std::string p_text(double p) {
  if (p < 0.001) return "p < 0.001";
  std::string s = detail::printf_double("%.2g", p);
  if ((std::stod(s) < kSignificanceLevel) != (p < kSignificanceLevel))
    s = detail::printf_double("%.4g", p);
  return "p = " + s;
}

// "+6.31 points, 95% CI [2.10, 10.52] (Welch), bootstrap [4.00, 8.50]; t = 4.12, df = 3.9".
std::string difference_text(const RowComparison& c) {
  std::string s = signed_points(c.difference);
  if (!c.welch) return s;
  const WelchTest& w = *c.welch;
  return s + ", 95% CI " + interval_text(w.ci) + " (Welch), bootstrap 95% " +
         interval_text(c.bootstrap) + "; t = " + format_fixed(w.t, 2) +
         ", df = " + format_fixed(w.df, 1);
}

std::string seeds_text(const ReportRow& r) {
  const std::size_t n = r.val_acc.size();
  return std::to_string(n) + (n == 1 ? " seed" : " seeds");
}

// "gradreg (3 seeds, 75.1 passes over the training data) 78.17%".
std::string side_text(const ReportRow& r, const char* passes_unit) {
  return r.name + " (" + seeds_text(r) + ", " + format_compact(r.passes, 1) + passes_unit + ") " +
         format_fixed(r.val_acc_mean, 2) + "%";
}

// ", at unequal compute: SGD made fewer passes over the training data (7.5 against 75.1)".
std::string compute_text(const ReportRow& fb, const ReportRow& sgd) {
  if (!std::isfinite(fb.passes) || !std::isfinite(sgd.passes)) return "";
  const double fewer = std::min(fb.passes, sgd.passes), more = std::max(fb.passes, sgd.passes);
  if (more - fewer <= 0.01 * more) return ", at equal passes over the training data";
  return std::string(", at unequal compute: ") + (sgd.passes < fb.passes ? "SGD" : "full batch") +
         " made fewer passes over the training data (" + format_compact(fewer, 1) + " against " +
         format_compact(more, 1) + ")";
}

// " Scale: 512 training images of cifar10.", or "" when the summary does not say.
std::string scale_text(const ReportRow& row, const std::vector<RunRecord>& runs) {
  const RunRecord& any = runs[row.runs.front()];
  const double images = json_number(any.summary, "train_images");
  if (!std::isfinite(images)) return "";
  const std::string dataset = json_text(any.summary, "dataset");
  return " Scale: " + detail::format_count(images) + " training images" +
         (dataset.empty() ? "" : " of " + dataset) + ".";
}

std::string caveats_text(const ReportRow& fb, const ReportRow& sgd, const Best& best_fb,
                         const Best& best_sgd) {
  std::string s;
  if (fb.diverged || sgd.diverged)
    s += " Diverged seeds are included as reported (" + fb.name + ": " +
         std::to_string(fb.diverged) + ", " + sgd.name + ": " + std::to_string(sgd.diverged) + ").";
  if (best_fb.candidates > 1 || best_sgd.candidates > 1)
    s += " Each row was picked as the best of its kind by these same accuracies, which flatters "
         "it a little.";
  return s;
}

std::string train_acc_text(const ReportRow& r) {
  return "final training accuracy " + format_fixed(r.train_acc_mean, 2) + "%";
}

// "", or " Not a generalization gap: fb1 is under-trained (final training accuracy 25.75%)."
std::string fit_caveat(const ReportRow& a, const ReportRow& b) {
  std::vector<const ReportRow*> under;
  for (const ReportRow* r : {&a, &b})
    if (!r->fitted()) under.push_back(r);
  if (under.empty()) return "";
  std::string s = " Not a generalization gap: ";
  for (std::size_t i = 0; i < under.size(); ++i)
    s += (i ? " and " : "") + under[i]->name + " (" + train_acc_text(*under[i]) + ", fitted in " +
         std::to_string(under[i]->fitted_seeds) + "/" + std::to_string(under[i]->runs.size()) +
         " seeds)";
  return s + (under.size() == 1 ? " is" : " are") + " under-trained.";
}

std::string threshold_text() {
  return "final training accuracy at least " + format_fixed(kFittedTrainAccuracy, 0) +
         "% in every seed";
}

// Rows with a validation accuracy that did not fit their training data, named with their
// training accuracy; empty when every row fitted.
std::string under_trained_text(const std::vector<ReportRow>& rows) {
  std::string names;
  for (const ReportRow& r : rows) {
    if (!has_val_acc(r) || r.fitted()) continue;
    names += (names.empty() ? "" : "; ") + r.name + " (" + train_acc_text(r) + ")";
  }
  if (names.empty()) return "";
  return "Under-trained (did not fit the training data, " + threshold_text() +
         "), so not compared for generalization: " + names + ".";
}

std::string headline_text(const std::vector<ReportRow>& rows, const std::vector<RunRecord>& runs,
                          const RowComparison& c, const Best& best_fb, const Best& best_sgd,
                          const std::string& kind_not_fitted) {
  const ReportRow &fb = rows[c.a], &sgd = rows[c.b];
  std::ostringstream s;
  if (kind_not_fitted.empty())
    s << "Generalization, between rows that fitted the training data (" << threshold_text()
      << "): best full batch against best SGD, by mean validation accuracy: ";
  else
    s << "No generalization comparison: no " << kind_not_fitted << " row fitted the training data ("
      << threshold_text() << "). Best full batch against best SGD, by mean validation accuracy "
      << "(a difference in accuracy that includes under-training): ";
  s << side_text(fb, " passes over the training data") << ", " << side_text(sgd, " passes")
    << ". Full batch minus SGD: " << difference_text(c)
    << ". Verdict: " << verdict_text(c, "full batch ahead", "SGD ahead") << compute_text(fb, sgd)
    << ".";
  if (!c.welch)
    s << " With a single seed in a row the spread over seeds is unknown, so no test is made.";
  s << fit_caveat(fb, sgd) << scale_text(fb, runs) << caveats_text(fb, sgd, best_fb, best_sgd);
  return s.str();
}

std::string missing_kind_text(bool stochastic) {
  return stochastic ? "No SGD row (config hyp.train_stochastic: true, with a validation accuracy) "
                      "is among these runs, so full batch is not compared with SGD."
                    : "No full-batch row (config hyp.train_stochastic: false, with a validation "
                      "accuracy) is among these runs, so full batch is not compared with SGD.";
}

void add_headline(Conclusion& out, const std::vector<ReportRow>& rows,
                  const std::vector<RunRecord>& runs) {
  const Best fb_any = find_best(rows, false, false), sgd_any = find_best(rows, true, false);
  if (!fb_any.index || !sgd_any.index) {
    out.headline_text = missing_kind_text(!sgd_any.index);
    return;
  }
  out.under_trained_text = under_trained_text(rows);
  const Best fb = find_best(rows, false, true), sgd = find_best(rows, true, true);
  out.generalization = fb.index && sgd.index;
  const Best& a = out.generalization ? fb : fb_any;
  const Best& b = out.generalization ? sgd : sgd_any;
  out.headline = compare_rows(rows, *a.index, *b.index);
  const std::string kind_not_fitted = out.generalization ? "" : fb.index ? "SGD" : "full-batch";
  out.headline_text = headline_text(rows, runs, *out.headline, a, b, kind_not_fitted);
}

bool equal_passes(double a, double b) {
  return std::isfinite(a) && std::isfinite(b) && std::abs(a - b) <= 0.01 * std::max(a, b);
}

// The best SGD row with the best full-batch row's passes, when the overall best SGD row is not it.
void add_equal_compute(Conclusion& out, const std::vector<ReportRow>& rows) {
  if (!out.headline) return;
  const ReportRow& fb = rows[out.headline->a];
  if (equal_passes(fb.passes, rows[out.headline->b].passes)) return;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (has_val_acc(rows[i]) && is_kind(rows[i], true) && equal_passes(rows[i].passes, fb.passes) &&
        (!best || rows[i].val_acc_mean > rows[*best].val_acc_mean))
      best = i;
  if (!best) return;
  out.equal_compute = compare_rows(rows, out.headline->a, *best);
  const RowComparison& c = *out.equal_compute;
  out.equal_compute_text =
      "At equal compute (passes over the training data): " + side_text(fb, " passes") +
      " against " + side_text(rows[*best], " passes") +
      ". Full batch minus SGD: " + difference_text(c) +
      ". Verdict: " + verdict_text(c, "full batch ahead", "SGD ahead") + "." +
      fit_caveat(fb, rows[*best]);
}

void add_ladder(Conclusion& out, const std::vector<ReportRow>& rows) {
  const std::vector<std::size_t> fb = full_batch_rows(rows);
  if (fb.size() < 2) return;
  out.ladder_intro =
      "What each step of the ladder added (full-batch rows in table order, each row's mean "
      "validation accuracy minus the previous one's; every step tested on its own, without "
      "correction for multiple comparisons):";
  for (std::size_t k = 1; k < fb.size(); ++k) {
    const RowComparison c = compare_rows(rows, fb[k], fb[k - 1]);
    const std::string &later = rows[c.a].name, &earlier = rows[c.b].name;
    out.ladder_steps.push_back(earlier + " → " + later + ": " + difference_text(c) + ": " +
                               verdict_text(c, later + " ahead", earlier + " ahead") + "." +
                               fit_caveat(rows[c.a], rows[c.b]));
    out.ladder.push_back(c);
  }
}

std::string method_note() {
  const double resamples = static_cast<double>(BootstrapOptions{}.resamples);
  return "Differences are in points of mean validation accuracy over seeds. The 95% CI and the "
         "two-sided p-value come from Welch's t-test (unequal variances), the verdict from the "
         "p-value alone, at the 5% level; a difference that is not significant is not shown to "
         "be absent either. The percentile bootstrap interval (" +
         detail::format_count(resamples) +
         " resamples, fixed seed) is shown alongside; with few seeds it understates the spread.";
}

bool any_tested(const Conclusion& c) {
  if (c.headline && c.headline->welch) return true;
  for (const RowComparison& step : c.ladder)
    if (step.welch) return true;
  return false;
}

}  // namespace

RowComparison compare_rows(const std::vector<ReportRow>& rows, std::size_t a, std::size_t b) {
  RowComparison c;
  c.a = a;
  c.b = b;
  c.difference = rows[a].val_acc_mean - rows[b].val_acc_mean;
  c.welch = welch_test(rows[a].val_acc, rows[b].val_acc);
  c.bootstrap = bootstrap_mean_difference(rows[a].val_acc, rows[b].val_acc);
  return c;
}

std::string verdict_text(const RowComparison& c, const std::string& a_ahead,
                         const std::string& b_ahead) {
  if (!c.welch) return "n/a (1 seed)";
  const double p = c.welch->p;
  if (!(p < kSignificanceLevel))
    return "not significantly different at the 5% level (" + p_text(p) + ")";
  return (c.difference > 0 ? a_ahead : b_ahead) + " (" + p_text(p) + ")";
}

Conclusion conclude(const std::vector<ReportRow>& rows, const std::vector<RunRecord>& runs) {
  Conclusion out;
  add_headline(out, rows, runs);
  add_equal_compute(out, rows);
  add_ladder(out, rows);
  if (any_tested(out)) out.method_note = method_note();
  return out;
}

std::string conclusion_markdown(const Conclusion& c) {
  std::string md = c.headline_text;
  if (!c.under_trained_text.empty()) md += "\n\n" + c.under_trained_text;
  if (!c.equal_compute_text.empty()) md += "\n\n" + c.equal_compute_text;
  if (!c.ladder_intro.empty()) {
    md += "\n\n" + c.ladder_intro + "\n";
    for (const std::string& step : c.ladder_steps) md += "\n- " + step;
  }
  if (!c.method_note.empty()) md += "\n\n" + c.method_note;
  return md;
}

}  // namespace fullbatch
