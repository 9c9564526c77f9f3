// The report's files: the Markdown table and conclusion (also printed to the console), CSV and
// JSON for scripts, a self-contained HTML page, and one SVG per curve (mean over seeds with the
// range over seeds shaded). write_report ties loading, aggregation, the conclusion and writing
// together; every file is replaced atomically.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/optim/stability.h"
#include "fullbatch/report/format.h"
#include "fullbatch/report/report.h"
#include "fullbatch/report/target_cost.h"

namespace fullbatch {

namespace fs = std::filesystem;
using detail::escape_xml;
using detail::format_compact;
using detail::format_count;
using detail::format_fixed;
using detail::json_text;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Cells

std::string escape_md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_number(double v) {
  return std::isfinite(v) ? detail::printf_double("%.6g", v) : "";
}

json finite_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

std::string val_text(const ReportRow& r) {
  if (!std::isfinite(r.val_acc_mean)) return "n/a";
  return format_fixed(r.val_acc_mean, 2) + " ± " + format_fixed(r.val_acc_std, 2);
}

// The table's columns, shared by the Markdown and HTML tables.
struct Column {
  const char* title;
  bool numeric;  // right-aligned
};

const Column kColumns[] = {{"row", false},
                           {"seeds", true},
                           {"steps", true},
                           {"passes", true},
                           {"images processed", true},
                           {"val acc. (mean ± std)", true},
                           {"train acc.", true},
                           {"train loss", true},
                           {"gap", true},
                           {"fitted", false},
                           {"time", true},
                           {"status", false},
                           {"paper", true}};

// One row's cells in kColumns order, not yet escaped.
std::vector<std::string> table_cells(const ReportRow& r) {
  return {r.name,
          std::to_string(r.runs.size()),
          steps_text(r),
          format_compact(r.passes, 1),
          format_count(r.images),
          val_text(r),
          format_fixed(r.train_acc_mean, 2),
          format_fixed(r.train_loss_mean, 4),
          format_fixed(r.generalization_gap(), 2),
          fitted_text(r),
          format_duration(r.time_s_mean),
          r.status,
          r.paper.empty() ? "-" : r.paper};
}

// Under the table in report.md and report.html.
std::string table_note() {
  return "Accuracies in %; std is the sample standard deviation over seeds (n/a with one seed); "
         "train acc. and train loss are the final step's, on the training data as trained "
         "(augmented); gap = train acc. - val acc. (the generalization gap, in points); fitted: "
         "every seed's final training accuracy is at least " +
         format_fixed(kFittedTrainAccuracy, 0) +
         "% (yes), none (no), or how many seeds did; only rows that fitted are compared for "
         "generalization. Passes are passes over the training data (the metrics' epoch; an SGD "
         "epoch that drops its last partial batch counts a little under one); images processed = "
         "passes x training images, one per image and gradient over the data; an optimizer's "
         "extra gradient evaluations (SAM, L-BFGS) count as passes, the regularizer's do not (the "
         "time shows those); time is mean wall time per run.";
}

std::string markdown_line(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const std::string& c : cells) line += " " + c + " |";
  return line + "\n";
}

// ---------------------------------------------------------------------------------------------
// Documents

struct PlotDef {
  const char* file;
  const char* key;
  const char* title;
  const char* y_label;
  bool log_y;
};

const PlotDef kPlots[] = {
    {"val_accuracy.svg", "val_accuracy", "Validation accuracy (mean over seeds)",
     "val. accuracy (%)", false},
    {"train_loss.svg", "train_loss", "Training loss (mean over seeds)", "train loss (log)", true},
    {"grad_norm.svg", "grad_norm", "Full-gradient norm (mean over seeds)", "gradient norm (log)",
     true},
    {"lr.svg", "lr", "Learning rate", "learning rate", false},
};

struct Plot {
  const PlotDef* def;
  std::string svg;
};

const char kBandLabel[] = "shaded: min-max over seeds";

// What the plots' x axis shows, from write_report's options.
struct XAxis {
  const char* key;    // metrics field
  const char* label;  // axis title
};

XAxis x_axis(const ReportOptions& options) {
  if (options.x_wall_time) return {"time_s", "wall time (s, mean over seeds)"};
  return {"epoch", "passes over the training data"};
}

// A row's curve as a line (mean over seeds) and a band (min to max over seeds).
PlotSeries row_series(const ReportRow& r, const std::vector<RunRecord>& runs, const char* key,
                      const XAxis& x) {
  PlotSeries s;
  s.label = r.name;
  for (const SeedCurvePoint& p : curve_over_seeds(r, runs, key, x.key)) {
    s.points.emplace_back(p.x, p.mean);
    s.band.push_back({p.x, p.min, p.max});
  }
  return s;
}

// analysis.every_nth_step: the top Hessian eigenvalue against 2/lr and the edge of stability of
// the run's own optimizer (optim/stability.h: heavy ball (2+2m)/lr, Nesterov (2+2m)/((1+2m) lr),
// none for adaptive optimizers). Points whose Lanczos value had not converged are drawn as their
// own series, since they underestimate the top eigenvalue.
const PlotDef kCurvaturePlot = {
    "top_eigenvalue.svg", "top_eigenvalue",
    "Top Hessian eigenvalue (mean over seeds) and the optimizer's edge of stability",
    "eigenvalue (log)", true};

// The optimizer settings of a run's config, as far as the stability limit needs them.
OptimizerSettings run_optimizer(const RunRecord& run) {
  OptimizerSettings s;
  const json& c = run.config;
  if (!c.is_object() || !c.contains("hyp")) return s;
  const json& hyp = c["hyp"];
  if (hyp.contains("optim") && hyp["optim"].is_object()) {
    const json& o = hyp["optim"];
    if (o.contains("name") && o["name"].is_string()) s.name = o["name"].get<std::string>();
    const double m = detail::json_number(o, "momentum"), d = detail::json_number(o, "dampening");
    if (std::isfinite(m)) s.momentum = m;
    if (std::isfinite(d)) s.dampening = d;
    if (o.contains("nesterov") && o["nesterov"].is_boolean())
      s.nesterov = o["nesterov"].get<bool>();
  }
  if (hyp.contains("optim_modification") && hyp["optim_modification"].contains("name") &&
      hyp["optim_modification"]["name"].is_string())
    s.modification.name = hyp["optim_modification"]["name"].get<std::string>();
  return s;
}

std::string render_curvature_plot(const std::vector<ReportRow>& rows,
                                  const std::vector<RunRecord>& runs, const XAxis& x) {
  PlotSpec spec;
  spec.title = kCurvaturePlot.title;
  spec.x_label = x.label;
  spec.y_label = kCurvaturePlot.y_label;
  spec.log_y = true;
  spec.band_label = kBandLabel;
  for (const ReportRow& r : rows) {
    PlotSeries eig = row_series(r, runs, "top_eigenvalue", x);
    if (eig.points.empty()) continue;
    StabilityLimit limit;
    try {
      if (!r.runs.empty()) limit = stability_limit(run_optimizer(runs[r.runs.front()]));
    } catch (const UserError&) {  // a name this version does not know: no line
    }
    PlotSeries gd{r.name + ": 2/lr", {}}, edge{r.name + ": " + limit.label, {}};
    // The thresholds where the eigenvalue was measured (same seeds' lr, mean over seeds).
    const std::vector<SeedCurvePoint> lr = curve_over_seeds(r, runs, "lr", x.key);
    for (const SeedCurvePoint& p : lr)
      if (p.mean > 0) {
        gd.points.emplace_back(p.x, 2.0 / p.mean);
        if (limit.scale) edge.points.emplace_back(p.x, *limit.scale / p.mean);
      }
    // Unconverged Lanczos values (curvature_converged false in any seed), marked apart.
    PlotSeries unconverged{r.name + ": not converged", {}};
    for (size_t i : r.runs)
      for (const json& m : runs[i].metrics)
        if (m.contains("curvature_converged") && m["curvature_converged"].is_boolean() &&
            !m["curvature_converged"].get<bool>() && m.contains("top_eigenvalue") &&
            m.contains(x.key)) {
          const double xv = detail::json_number(m, x.key),
                       ev = detail::json_number(m, "top_eigenvalue");
          if (std::isfinite(xv) && std::isfinite(ev)) unconverged.points.emplace_back(xv, ev);
        }
    std::sort(unconverged.points.begin(), unconverged.points.end());
    spec.series.push_back(std::move(eig));
    const bool same_as_gd = limit.scale && *limit.scale == 2.0;
    if (!same_as_gd) spec.series.push_back(std::move(gd));
    if (limit.scale) spec.series.push_back(std::move(edge));
    if (!unconverged.points.empty()) spec.series.push_back(std::move(unconverged));
  }
  return render_svg_plot(spec);
}

// One plot per kPlots entry, one series per row.
std::vector<Plot> render_plots(const std::vector<ReportRow>& rows,
                               const std::vector<RunRecord>& runs, const XAxis& x) {
  std::vector<Plot> plots;
  for (const PlotDef& def : kPlots) {
    PlotSpec spec;
    spec.title = def.title;
    spec.x_label = x.label;
    spec.y_label = def.y_label;
    spec.log_y = def.log_y;
    spec.band_label = kBandLabel;
    for (const ReportRow& r : rows) spec.series.push_back(row_series(r, runs, def.key, x));
    plots.push_back({&def, render_svg_plot(spec)});
  }
  const bool curvature = std::any_of(runs.begin(), runs.end(), [](const RunRecord& run) {
    return std::any_of(run.metrics.begin(), run.metrics.end(),
                       [](const json& m) { return m.contains("top_eigenvalue"); });
  });
  if (curvature) plots.push_back({&kCurvaturePlot, render_curvature_plot(rows, runs, x)});
  return plots;
}

std::string plots_note(const XAxis& x) {
  return std::string("Curves: mean over seeds against ") + x.label + "; " + kBandLabel + ".";
}

std::string markdown_document(const std::string& table, const Conclusion& conclusion,
                              const std::vector<Plot>& plots, const XAxis& x) {
  std::ostringstream md;
  md << "# fullbatch report\n\n" << conclusion_markdown(conclusion) << "\n\n" << table << "\n";
  md << table_note() << "\n\n" << plots_note(x) << "\n\n";
  for (const Plot& p : plots) md << "![" << p.def->title << "](" << p.def->file << ")\n\n";
  return md.str();
}

// "epochs" repeats "passes", its older name, for scripts written before the rename (also in JSON).
std::string csv_document(const std::vector<ReportRow>& rows) {
  std::ostringstream csv;
  csv << "row,seeds,steps_min,steps_max,epochs,passes,images_processed,val_acc_mean,val_acc_std,"
         "train_acc_mean,train_loss_mean,generalization_gap,fitted_seeds,time_s_mean,diverged,"
         "status,paper\n";
  for (const ReportRow& r : rows) {
    csv << csv_field(r.name) << "," << r.runs.size() << "," << r.steps_min << "," << r.steps_max
        << "," << csv_number(r.passes) << "," << csv_number(r.passes) << "," << csv_number(r.images)
        << "," << csv_number(r.val_acc_mean) << "," << csv_number(r.val_acc_std) << ","
        << csv_number(r.train_acc_mean) << "," << csv_number(r.train_loss_mean) << ","
        << csv_number(r.generalization_gap()) << "," << r.fitted_seeds << ","
        << csv_number(r.time_s_mean) << "," << r.diverged << "," << csv_field(r.status) << ","
        << csv_field(r.paper) << "\n";
  }
  return csv.str();
}

json json_row(const ReportRow& r, const std::vector<RunRecord>& runs) {
  json row;
  row["name"] = r.name;
  row["seeds"] = r.runs.size();
  row["steps_min"] = r.steps_min;
  row["steps_max"] = r.steps_max;
  row["epochs"] = finite_or_null(r.passes);
  row["passes"] = finite_or_null(r.passes);
  row["images_processed"] = finite_or_null(r.images);
  row["val_acc_mean"] = finite_or_null(r.val_acc_mean);
  row["val_acc_std"] = finite_or_null(r.val_acc_std);
  row["val_acc_count"] = r.val_acc.size();
  row["train_acc_mean"] = finite_or_null(r.train_acc_mean);
  row["train_loss_mean"] = finite_or_null(r.train_loss_mean);
  row["generalization_gap"] = finite_or_null(r.generalization_gap());
  row["fitted_seeds"] = r.fitted_seeds;
  row["fitted"] = r.fitted();
  row["fitted_threshold"] = kFittedTrainAccuracy;
  row["time_s_mean"] = finite_or_null(r.time_s_mean);
  row["diverged"] = r.diverged;
  row["running"] = r.running;
  row["stochastic"] = r.stochastic ? json(*r.stochastic) : json(nullptr);
  row["status"] = r.status;
  row["paper"] = r.paper.empty() ? json(nullptr) : json(r.paper);
  row["run_dirs"] = json::array();
  for (std::size_t idx : r.runs) row["run_dirs"].push_back(runs[idx].dir);
  return row;
}

json interval_json(const Interval& i) {
  return {finite_or_null(i.lo), finite_or_null(i.hi)};
}

// Row a against row b; the test fields are null when a side has a single seed.
json comparison_json(const RowComparison& c, const std::vector<ReportRow>& rows) {
  json j = {{"a", rows[c.a].name}, {"b", rows[c.b].name}, {"difference", c.difference}};
  const bool tested = c.welch.has_value();
  j["t"] = tested ? finite_or_null(c.welch->t) : json(nullptr);
  j["df"] = tested ? json(c.welch->df) : json(nullptr);
  j["p"] = tested ? json(c.welch->p) : json(nullptr);
  j["significant"] = tested ? json(c.welch->p < kSignificanceLevel) : json(nullptr);
  j["ci95"] = interval_json(tested ? c.welch->ci : Interval{});
  j["bootstrap95"] = interval_json(c.bootstrap);
  return j;
}

json conclusion_json(const Conclusion& c, const std::vector<ReportRow>& rows) {
  json j;
  j["text"] = conclusion_markdown(c);
  j["headline"] = c.headline ? comparison_json(*c.headline, rows) : json(nullptr);
  j["ladder"] = json::array();
  for (const RowComparison& step : c.ladder) j["ladder"].push_back(comparison_json(step, rows));
  return j;
}

std::string time_to_accuracy_section(const std::vector<TargetCost>& costs) {
  if (costs.empty()) return "";
  std::string md = "## Cost to reach the target accuracy (`hyp.stop_at_val_accuracy`)\n\n" +
                   markdown_line(target_cost_columns()) + "|---|---:|---:|---:|---:|\n";
  for (const TargetCost& c : costs) {
    std::vector<std::string> cells = target_cost_cells(c);
    cells[0] = escape_md_cell(cells[0]);
    md += markdown_line(cells);
  }
  return md + "\n" + target_cost_note() + "\n\n";
}

// An HTML table: a header of `titles`, then one row per entry of `cells` (not yet escaped),
// numeric columns right-aligned. Every table of report.html goes through it.
void write_html_rows(std::ostream& h, const std::vector<std::string>& titles,
                     const std::vector<bool>& numeric,
                     const std::vector<std::vector<std::string>>& cells) {
  h << "<table>\n<thead><tr>";
  for (const std::string& title : titles) h << "<th>" << escape_xml(title) << "</th>";
  h << "</tr></thead>\n<tbody>\n";
  for (const std::vector<std::string>& row : cells) {
    h << "<tr>";
    for (std::size_t i = 0; i < row.size(); ++i)
      h << (numeric[i] ? "<td class=\"num\">" : "<td>") << escape_xml(row[i]) << "</td>";
    h << "</tr>\n";
  }
  h << "</tbody>\n</table>\n";
}

void write_html_target_costs(std::ostream& h, const std::vector<TargetCost>& costs) {
  if (costs.empty()) return;
  std::vector<std::vector<std::string>> cells;
  for (const TargetCost& c : costs) cells.push_back(target_cost_cells(c));
  const std::vector<std::string> titles = target_cost_columns();
  std::vector<bool> numeric(titles.size(), true);
  numeric[0] = false;  // the row's name
  h << "<h2>Cost to reach the target accuracy</h2>\n";
  write_html_rows(h, titles, numeric, cells);
  h << "<p>" << escape_xml(target_cost_note()) << "</p>\n";
}

std::string json_document(const std::vector<ReportRow>& rows, const std::vector<RunRecord>& runs,
                          const Conclusion& conclusion, const std::vector<Plot>& plots,
                          const std::vector<TargetCost>& costs) {
  json j;
  j["conclusion"] = conclusion_json(conclusion, rows);
  j["time_to_accuracy"] = target_costs_json(costs);
  j["rows"] = json::array();
  for (const ReportRow& r : rows) j["rows"].push_back(json_row(r, runs));
  j["runs"] = json::array();
  for (const RunRecord& r : runs) {
    json run = r.summary;
    run["dir"] = r.dir;
    run["metrics_lines"] = r.metrics.size();
    run["warnings"] = r.warnings;
    j["runs"].push_back(std::move(run));
  }
  j["plots"] = json::array();
  for (const Plot& p : plots) j["plots"].push_back(p.def->file);
  return j.dump(2) + "\n";
}

const char kHtmlHead[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>fullbatch report</title>\n<style>\n"
    "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1100px}\n"
    "table{border-collapse:collapse;margin:1em 0}\n"
    "th,td{border:1px solid #ccc;padding:4px 10px}\n"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "p.verdict{background:#f7f7e8;border-left:4px solid #bb9;padding:.6em 1em}\n"
    ".plots svg{display:block;margin:1em 0;max-width:100%;height:auto}\n"
    "</style>\n</head>\n<body>\n<h1>fullbatch report</h1>\n";

void write_html_table(std::ostream& h, const std::vector<ReportRow>& rows) {
  std::vector<std::string> titles;
  std::vector<bool> numeric;
  for (const Column& c : kColumns) titles.push_back(c.title), numeric.push_back(c.numeric);
  std::vector<std::vector<std::string>> cells;
  for (const ReportRow& r : rows) cells.push_back(table_cells(r));
  write_html_rows(h, titles, numeric, cells);
}

void write_html_conclusion(std::ostream& h, const Conclusion& c) {
  h << "<p class=\"verdict\">" << escape_xml(c.headline_text) << "</p>\n";
  if (!c.ladder_intro.empty()) {
    h << "<p>" << escape_xml(c.ladder_intro) << "</p>\n<ul>\n";
    for (const std::string& step : c.ladder_steps) h << "<li>" << escape_xml(step) << "</li>\n";
    h << "</ul>\n";
  }
  if (!c.method_note.empty()) h << "<p>" << escape_xml(c.method_note) << "</p>\n";
}

// Everything inline, so the single file can be mailed or archived.
std::string html_document(const std::vector<ReportRow>& rows, const std::vector<RunRecord>& runs,
                          const Conclusion& conclusion, const std::vector<Plot>& plots,
                          const XAxis& x, const std::vector<TargetCost>& costs) {
  std::ostringstream h;
  h << kHtmlHead;
  write_html_conclusion(h, conclusion);
  write_html_table(h, rows);
  h << "<p>" << escape_xml(table_note()) << "</p>\n<p>" << escape_xml(plots_note(x)) << "</p>\n";
  write_html_target_costs(h, costs);
  h << "<div class=\"plots\">\n";
  for (const Plot& p : plots) h << p.svg;
  h << "</div>\n<h2>Runs</h2>\n<ul>\n";
  for (const RunRecord& r : runs)
    h << "<li>" << escape_xml(r.name()) << " seed " << escape_xml(json_text(r.summary, "seed"))
      << ": <code>" << escape_xml(r.dir) << "</code> ("
      << escape_xml(json_text(r.summary, "status")) << ")</li>\n";
  h << "</ul>\n</body>\n</html>\n";
  return h.str();
}

// ---------------------------------------------------------------------------------------------
// write_report's steps

// Same seed twice in a row means two copies of one run, which would shrink the std.
void warn_duplicate_seeds(const std::vector<RunRecord>& runs, std::ostream& console) {
  std::map<std::pair<std::string, std::string>, std::string> seen;
  for (const RunRecord& r : runs) {
    const std::string seed = json_text(r.summary, "seed");
    if (seed.empty()) continue;
    auto [it, fresh] = seen.emplace(std::make_pair(r.name(), seed), r.dir);
    if (!fresh)
      console << "warning: row " << r.name() << " has seed " << seed << " twice (" << it->second
              << " and " << r.dir << ")\n";
  }
}

std::vector<RunRecord> load_runs(const std::vector<std::string>& run_dirs, std::ostream& console) {
  if (run_dirs.empty()) throw UserError("report: no run directories given");
  std::vector<RunRecord> runs;
  for (const std::string& d : expand_run_dirs(run_dirs)) runs.push_back(load_run(d));
  for (const RunRecord& r : runs)
    for (const std::string& w : r.warnings) console << "warning: " << w << "\n";
  warn_duplicate_seeds(runs, console);
  return runs;
}

void create_out_dir(const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir))
    throw UserError("cannot create report directory " + out_dir + ": " + ec.message());
}

}  // namespace

std::string format_markdown_table(const std::vector<ReportRow>& rows) {
  std::vector<std::string> titles;
  std::string align = "|";
  for (const Column& c : kColumns) {
    titles.push_back(c.title);
    align += c.numeric ? "---:|" : "---|";
  }
  std::string md = markdown_line(titles) + align + "\n";
  for (const ReportRow& r : rows) {
    std::vector<std::string> cells = table_cells(r);
    for (std::string& c : cells) c = escape_md_cell(c);
    md += markdown_line(cells);
  }
  return md;
}

namespace {

// Figures `fullbatch analyze` left in the runs' analysis/ folders, linked from the report.
std::string analysis_section(const std::vector<RunRecord>& runs, const fs::path& out) {
  std::string md;
  for (const RunRecord& run : runs) {
    const fs::path dir = fs::path(run.dir) / "analysis";
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> svgs;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".svg") svgs.push_back(entry.path());
    std::sort(svgs.begin(), svgs.end());
    if (svgs.empty()) continue;
    md += "### " + run.name() + " (" + run.dir + ")\n\n";
    for (const auto& svg : svgs)
      md += "![" + svg.stem().string() + "](" +
            fs::relative(fs::absolute(svg), fs::absolute(out)).string() + ")\n\n";
  }
  return md.empty() ? md : "## Analyses (`fullbatch analyze`)\n\n" + md;
}

}  // namespace

int write_report(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                 const std::map<std::string, std::string>& paper_numbers, std::ostream& console,
                 const ReportOptions& options) {
  const std::vector<RunRecord> runs = load_runs(run_dirs, console);
  const std::vector<ReportRow> rows = summarize_runs(runs, paper_numbers);
  const std::string table = format_markdown_table(rows);
  const Conclusion conclusion = conclude(rows, runs);
  const XAxis x = x_axis(options);

  create_out_dir(out_dir);
  const fs::path out(out_dir);
  auto write = [&](const std::string& name, const std::string& text) {
    write_file_atomic((out / name).string(), text);
  };
  const std::vector<Plot> plots = render_plots(rows, runs, x);
  for (const Plot& p : plots) write(p.def->file, p.svg);
  const std::vector<TargetCost> costs = target_costs(rows, runs);
  write("report.md", markdown_document(table, conclusion, plots, x) +
                         time_to_accuracy_section(costs) + analysis_section(runs, out));
  write("report.csv", csv_document(rows));
  write("report.json", json_document(rows, runs, conclusion, plots, costs));
  write("report.html", html_document(rows, runs, conclusion, plots, x, costs));

  console << table << "\n" << conclusion_markdown(conclusion) << "\n";
  console << "report written to " << (out / "report.md").string() << " (+ .csv, .json, .html, "
          << plots.size() << " plots)\n";
  return 0;
}

}  // namespace fullbatch
