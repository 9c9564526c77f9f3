#include "fullbatch/report/report.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "fullbatch/common/error.h"

namespace fullbatch {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Small helpers

double num(const json& obj, const char* key) {
  if (!obj.is_object()) return kNaN;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

std::string printf_double(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Fixed decimals with trailing zeros removed, so 3000.0 epochs prints as "3000" and 0.25 as
// "0.25"; NaN prints as "n/a" because a table cell must never say "nan".
std::string fmt_num(double v, int max_decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", max_decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string fmt_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  return printf_double(("%." + std::to_string(decimals) + "f").c_str(), v);
}

std::string fmt_duration(double seconds) {
  if (!std::isfinite(seconds)) return "n/a";
  if (seconds < 120) return fmt_fixed(seconds, 1) + " s";
  if (seconds < 7200) return fmt_fixed(seconds / 60, 1) + " min";
  return fmt_fixed(seconds / 3600, 2) + " h";
}

std::string steps_text(const ReportRow& r) {
  if (r.steps_min == r.steps_max) return std::to_string(r.steps_min);
  return std::to_string(r.steps_min) + "-" + std::to_string(r.steps_max);
}

std::string val_text(const ReportRow& r) {
  if (!std::isfinite(r.val_acc_mean)) return "n/a";
  return fmt_fixed(r.val_acc_mean, 2) + " ± " + fmt_fixed(r.val_acc_std, 2);
}

std::string escape_xml(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

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

json finite_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// yaml-cpp keeps every scalar as text; guess the type the way a YAML 1.2 reader would, so that
// `train_stochastic: true` becomes a JSON boolean. Quoted scalars (tag "!") stay strings.
json yaml_scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "~" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0' && errno == 0) return i;
  end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end && *end == '\0' && std::isfinite(d)) return d;
  return s;
}

json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : n) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : n) arr.push_back(yaml_to_json(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      return yaml_scalar_to_json(n);
    default:
      return nullptr;
  }
}

// Python's json module and some C++ writers emit bare NaN/Infinity for a diverged loss; strict
// JSON rejects them and the whole line would be lost, so read them as null (missing) instead.
std::string nonfinite_to_null(const std::string& line) {
  std::string out;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < line.size())
        out += line[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    bool replaced = false;
    for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
      std::size_t n = std::char_traits<char>::length(tok);
      if (line.compare(i, n, tok) == 0) {
        out += "null";
        i += n - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += c;
  }
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw UserError("cannot write report file " + path.string());
}

// ---------------------------------------------------------------------------------------------
// Curves

// Mean over the seeds of a row at every step where at least one seed has a usable value. Seeds
// that stopped early (crash, divergence) simply stop contributing.
std::vector<std::pair<double, double>> mean_curve(const ReportRow& row,
                                                  const std::vector<RunRecord>& runs,
                                                  const char* key) {
  std::map<double, std::pair<double, int>> acc;
  for (std::size_t idx : row.runs) {
    for (const json& m : runs[idx].metrics) {
      double step = num(m, "step"), v = num(m, key);
      if (!std::isfinite(step) || !std::isfinite(v)) continue;
      auto& slot = acc[step];
      slot.first += v;
      slot.second += 1;
    }
  }
  std::vector<std::pair<double, double>> pts;
  pts.reserve(acc.size());
  for (const auto& [step, sc] : acc) pts.emplace_back(step, sc.first / sc.second);
  return pts;
}

// Largest 1-2-5 multiple of a power of ten not far above `raw`, so ticks read 0, 20, 40 rather
// than 0, 17.3, 34.6.
double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / p;
  double m = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
  return m * p;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;                                   // lo/hi are log10 values when log
  std::vector<std::pair<double, std::string>> ticks;  // position in axis units, label
};

int decimals_for(double step) {
  if (step >= 1) return 0;
  return static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-6) v = 0;
  if (std::fabs(v) >= 10000 && std::fmod(std::fabs(v), 1000.0) == 0)
    return fmt_num(v / 1000, 0) + "k";
  return fmt_fixed(v, decimals_for(step));
}

Axis linear_axis(double lo, double hi) {
  Axis a;
  if (!(std::isfinite(lo) && std::isfinite(hi))) lo = 0, hi = 1;
  if (hi - lo <= 0) {
    // A constant series needs some height; pad relative to its magnitude.
    double pad = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  double step = nice_step((hi - lo) / 5);
  double first = std::floor(lo / step), last = std::ceil(hi / step);
  a.lo = first * step;
  a.hi = last * step;
  for (double k = first; k <= last + 0.5; k += 1)
    a.ticks.emplace_back(k * step, tick_label(k * step, step));
  return a;
}

std::string decade_label(int e) {
  if (e >= -3 && e <= 4) return fmt_num(std::pow(10.0, e), 3);
  return "1e" + std::to_string(e);
}

// Whole decades, so every log plot has at least two labelled ticks however narrow its range.
Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  if (!(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi))) lo = 0.1, hi = 1;
  int e_lo = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e_hi = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e_hi <= e_lo) e_hi = e_lo + 1;
  a.lo = e_lo;
  a.hi = e_hi;
  int every = std::max(1, (e_hi - e_lo + 7) / 8);
  for (int e = e_lo; e <= e_hi; e += every) a.ticks.emplace_back(e, decade_label(e));
  if (e_hi - e_lo == 1) {
    for (double m : {2.0, 5.0}) {
      double v = m * std::pow(10.0, e_lo);
      std::string label =
          (e_lo >= -3 && e_lo <= 4) ? fmt_num(v, 4) : fmt_num(m, 0) + "e" + std::to_string(e_lo);
      a.ticks.emplace_back(std::log10(v), label);
    }
  }
  return a;
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

std::string coord(double v) {
  return printf_double("%.2f", v);
}

// ---------------------------------------------------------------------------------------------
// Comparison

std::string row_label(const ReportRow& r) {
  std::string s = r.name + " (" + std::to_string(r.val_acc_count) +
                  (r.val_acc_count == 1 ? " seed" : " seeds") + ")";
  return s;
}

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

}  // namespace

// -----------------------------------------------------------------------------------------------
// Loading

std::string RunRecord::name() const {
  std::string n = str(summary, "name");
  if (n.empty()) n = str(config, "name");
  if (n.empty()) n = fs::path(dir).filename().string();
  return n;
}

std::optional<bool> RunRecord::stochastic() const {
  if (!config.is_object()) return std::nullopt;
  auto hyp = config.find("hyp");
  if (hyp == config.end() || !hyp->is_object()) return std::nullopt;
  auto it = hyp->find("train_stochastic");
  if (it == hyp->end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

RunRecord load_run(const std::string& dir) {
  RunRecord rec;
  rec.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UserError("run directory " + dir + " does not exist");

  const fs::path summary_path = fs::path(dir) / "summary.json";
  std::ifstream summary_in(summary_path);
  if (!summary_in) throw UserError("run directory " + dir + " has no summary.json");
  try {
    summary_in >> rec.summary;
  } catch (const json::exception& e) {
    throw UserError("run directory " + dir + ": summary.json is not valid JSON");
  }
  if (!rec.summary.is_object())
    throw UserError("run directory " + dir + ": summary.json is not a JSON object");

  const fs::path metrics_path = fs::path(dir) / "metrics.jsonl";
  std::ifstream metrics_in(metrics_path);
  if (!metrics_in) throw UserError("run directory " + dir + " has no metrics.jsonl");
  std::string line;
  std::size_t line_no = 0, nonblank = 0;
  while (std::getline(metrics_in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++nonblank;
    json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) m = json::parse(nonfinite_to_null(line), nullptr, false);
    if (!m.is_object()) {
      rec.warnings.push_back(metrics_path.string() + ":" + std::to_string(line_no) +
                             ": skipped unparsable metrics line");
      continue;
    }
    rec.metrics.push_back(std::move(m));
  }
  // A few bad lines are a crash artefact; a file with no good line at all is not a metrics log.
  if (nonblank > 0 && rec.metrics.empty())
    throw UserError("run directory " + dir + ": metrics.jsonl has no parsable line");

  const fs::path config_path = fs::path(dir) / "config.yaml";
  if (fs::exists(config_path, ec)) {
    try {
      rec.config = yaml_to_json(YAML::LoadFile(config_path.string()));
    } catch (const YAML::Exception& e) {
      rec.warnings.push_back(config_path.string() + ": unreadable config (" + e.what() +
                             "); SGD/full-batch kind unknown");
      rec.config = nullptr;
    }
  }
  return rec;
}

std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(p, ec);
    std::string key = ec ? p.lexically_normal().string() : canon.string();
    if (seen.insert(key).second) out.push_back(p.string());
  };
  auto sorted_subdirs = [](const fs::path& parent) {
    std::vector<fs::path> subs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec))
      if (e.is_directory(ec)) subs.push_back(e.path());
    std::sort(subs.begin(), subs.end());
    return subs;
  };
  for (const std::string& arg : paths) {
    fs::path p(arg);
    std::error_code ec;
    if (!fs::is_directory(p, ec)) throw UserError("run directory " + arg + " does not exist");
    if (fs::exists(p / "summary.json", ec)) {
      add(p);
      continue;
    }
    bool found = false;
    for (const fs::path& child : sorted_subdirs(p)) {
      if (fs::exists(child / "summary.json", ec)) {
        add(child);
        found = true;
        continue;
      }
      for (const fs::path& grandchild : sorted_subdirs(child)) {
        if (fs::exists(grandchild / "summary.json", ec)) {
          add(grandchild);
          found = true;
        }
      }
    }
    if (!found)
      throw UserError("run directory " + arg +
                      " has no summary.json and no run directories (with one) below it");
  }
  return out;
}

// -----------------------------------------------------------------------------------------------
// Aggregation

std::vector<ReportRow> summarize_runs(const std::vector<RunRecord>& runs,
                                      const std::map<std::string, std::string>& paper_numbers) {
  std::vector<ReportRow> rows;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::string n = runs[i].name();
    auto it = index.find(n);
    if (it == index.end()) {
      index[n] = rows.size();
      rows.emplace_back();
      rows.back().name = n;
      rows.back().runs.push_back(i);
    } else {
      rows[it->second].runs.push_back(i);
    }
  }

  for (ReportRow& row : rows) {
    std::vector<double> val, train, time, epochs;
    bool first_steps = true;
    std::size_t no_val = 0;
    for (std::size_t idx : row.runs) {
      const RunRecord& r = runs[idx];
      const json* last = r.metrics.empty() ? nullptr : &r.metrics.back();
      // A running or crashed run may not have final_* fields yet; its newest logged value is
      // the honest stand-in.
      auto latest = [&](const char* summary_key, const char* metric_key) {
        double v = num(r.summary, summary_key);
        if (std::isfinite(v)) return v;
        for (auto it = r.metrics.rbegin(); it != r.metrics.rend(); ++it) {
          double m = num(*it, metric_key);
          if (std::isfinite(m)) return m;
        }
        return kNaN;
      };
      double steps = num(r.summary, "steps");
      if (!std::isfinite(steps) && last) steps = num(*last, "step");
      if (!std::isfinite(steps)) steps = 0;
      long s = std::lround(steps);
      if (first_steps) {
        row.steps_min = row.steps_max = s;
        first_steps = false;
      } else {
        row.steps_min = std::min(row.steps_min, s);
        row.steps_max = std::max(row.steps_max, s);
      }
      double e = num(r.summary, "epochs");
      if (!std::isfinite(e) && last) e = num(*last, "epoch");
      if (std::isfinite(e)) epochs.push_back(e);
      double v = latest("final_val_accuracy", "val_accuracy");
      if (std::isfinite(v))
        val.push_back(v);
      else
        ++no_val;
      double t = latest("final_train_accuracy", "train_accuracy");
      if (std::isfinite(t)) train.push_back(t);
      double w = latest("total_time_s", "time_s");
      if (std::isfinite(w)) time.push_back(w);
      std::string status = str(r.summary, "status");
      if (status == "diverged") ++row.diverged;
      if (status == "running") ++row.running;
      if (!row.stochastic) row.stochastic = r.stochastic();
    }
    auto mean = [](const std::vector<double>& xs) {
      if (xs.empty()) return kNaN;
      double s = 0;
      for (double x : xs) s += x;
      return s / static_cast<double>(xs.size());
    };
    row.val_acc_mean = mean(val);
    row.val_acc_count = val.size();
    row.val_acc_std = kNaN;
    if (val.size() >= 2) {
      double ss = 0;
      for (double x : val) ss += (x - row.val_acc_mean) * (x - row.val_acc_mean);
      row.val_acc_std = std::sqrt(ss / static_cast<double>(val.size() - 1));
    }
    row.train_acc_mean = mean(train);
    row.time_s_mean = mean(time);
    row.epochs = mean(epochs);

    const std::string of = "/" + std::to_string(row.runs.size());
    std::vector<std::string> parts;
    if (row.diverged) parts.push_back(std::to_string(row.diverged) + of + " diverged");
    if (row.running) parts.push_back(std::to_string(row.running) + of + " running");
    if (no_val) parts.push_back(std::to_string(no_val) + of + " without val. acc.");
    if (parts.empty()) {
      row.status = "completed";
    } else {
      for (std::size_t i = 0; i < parts.size(); ++i) row.status += (i ? ", " : "") + parts[i];
    }
    auto p = paper_numbers.find(row.name);
    if (p != paper_numbers.end()) row.paper = p->second;
  }
  return rows;
}

std::string format_markdown_table(const std::vector<ReportRow>& rows) {
  std::ostringstream md;
  md << "| row | seeds | steps | epochs | val acc. (mean ± std) | train acc. | time | status | "
        "paper |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---|---:|\n";
  for (const ReportRow& r : rows) {
    md << "| " << escape_md_cell(r.name) << " | " << r.runs.size() << " | " << steps_text(r)
       << " | " << fmt_num(r.epochs, 1) << " | " << val_text(r) << " | "
       << fmt_fixed(r.train_acc_mean, 2) << " | " << fmt_duration(r.time_s_mean) << " | "
       << escape_md_cell(r.status) << " | " << (r.paper.empty() ? "-" : escape_md_cell(r.paper))
       << " |\n";
  }
  return md.str();
}

std::string comparison_sentence(const std::vector<ReportRow>& rows,
                                const std::vector<RunRecord>& runs) {
  const ReportRow* sgd = nullptr;
  const ReportRow* best_fb = nullptr;
  for (const ReportRow& r : rows) {
    if (!std::isfinite(r.val_acc_mean) || !r.stochastic) continue;
    if (*r.stochastic) {
      if (!sgd) sgd = &r;  // the first SGD row is the baseline; the caller orders the ladder
    } else if (!best_fb || r.val_acc_mean > best_fb->val_acc_mean) {
      best_fb = &r;
    }
  }
  if (!sgd)
    return "No SGD baseline row (config hyp.train_stochastic: true, with a validation accuracy) "
           "is among these runs, so full batch is not compared with SGD.";
  if (!best_fb)
    return "No full-batch row (config hyp.train_stochastic: false, with a validation accuracy) "
           "is among these runs, so full batch is not compared with SGD.";

  // Describe the scale of the experiment, because a gap that closes on 512 images says little
  // about 50,000.
  std::string scale;
  const RunRecord& any = runs[best_fb->runs.front()];
  double images = num(any.summary, "train_images");
  std::string dataset = str(any.summary, "dataset");
  if (std::isfinite(images)) {
    scale = " (" + fmt_num(images, 0) + " training images" +
            (dataset.empty() ? "" : " of " + dataset) + ", " + steps_text(*best_fb) + " steps)";
  }

  const double gap = sgd->val_acc_mean - best_fb->val_acc_mean;
  std::ostringstream s;
  s << "The best full-batch row, " << row_label(*best_fb) << ", reaches "
    << fmt_fixed(best_fb->val_acc_mean, 2) << "% mean validation accuracy against "
    << fmt_fixed(sgd->val_acc_mean, 2) << "% for the SGD baseline " << row_label(*sgd) << ": ";
  if (gap >= 0)
    s << "full batch is " << fmt_fixed(gap, 2) << " points behind";
  else
    s << "full batch is " << fmt_fixed(-gap, 2) << " points ahead";
  if (!std::isfinite(best_fb->val_acc_std) || !std::isfinite(sgd->val_acc_std)) {
    s << ". With a single seed in a row the spread over seeds is unknown, so this report does "
         "not say whether the gap closes"
      << scale << ".";
  } else {
    const double tol = best_fb->val_acc_std + sgd->val_acc_std;
    if (gap <= tol) {
      s << (gap >= -tol ? ", within" : ", in favour of full batch by more than")
        << " the sum of the two standard deviations (" << fmt_fixed(tol, 2)
        << "), so the gap closes at this scale" << scale << ".";
    } else {
      s << ", more than the sum of the two standard deviations (" << fmt_fixed(tol, 2)
        << "), so the gap does not close at this scale" << scale << ".";
    }
  }
  if (best_fb->diverged || sgd->diverged)
    s << " Diverged seeds are included as reported (" << best_fb->name << ": " << best_fb->diverged
      << ", " << sgd->name << ": " << sgd->diverged << ").";
  return s.str();
}

// -----------------------------------------------------------------------------------------------
// SVG

std::string render_svg_plot(const PlotSpec& spec) {
  // Keep only drawable points so that scaling never sees NaN, inf or log(<=0).
  std::vector<PlotSeries> series;
  double x_lo = kNaN, x_hi = kNaN, y_lo = kNaN, y_hi = kNaN;
  for (const PlotSeries& in : spec.series) {
    PlotSeries s;
    s.label = in.label;
    for (const auto& [x, y] : in.points) {
      if (!std::isfinite(x) || !std::isfinite(y) || (spec.log_y && !(y > 0))) continue;
      s.points.emplace_back(x, y);
      x_lo = std::isfinite(x_lo) ? std::min(x_lo, x) : x;
      x_hi = std::isfinite(x_hi) ? std::max(x_hi, x) : x;
      y_lo = std::isfinite(y_lo) ? std::min(y_lo, y) : y;
      y_hi = std::isfinite(y_hi) ? std::max(y_hi, y) : y;
    }
    series.push_back(std::move(s));
  }
  const bool empty = !std::isfinite(x_lo);
  Axis xa = linear_axis(empty ? 0 : x_lo, empty ? 1 : x_hi);
  Axis ya = spec.log_y ? log_axis(empty ? 0.1 : y_lo, empty ? 1 : y_hi)
                       : linear_axis(empty ? 0 : y_lo, empty ? 1 : y_hi);

  std::size_t longest = 0;
  for (const PlotSeries& s : series) longest = std::max(longest, s.label.size());
  const double legend_w = series.empty() ? 0 : 40 + 7.0 * static_cast<double>(longest);
  const double left = 70, right = 20 + legend_w, top = 40, bottom = 55;
  // Grow the plot rather than let a long ladder's legend run off the bottom.
  const double plot_w = 560,
               plot_h = std::max(320.0, 20 + 18.0 * static_cast<double>(series.size()));
  const double width = left + plot_w + right, height = top + plot_h + bottom;
  auto px = [&](double x) { return left + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  auto py = [&](double y) {
    double v = spec.log_y ? std::log10(y) : y;
    return top + plot_h - (v - ya.lo) / (ya.hi - ya.lo) * plot_h;
  };
  auto py_axis = [&](double v) { return top + plot_h - (v - ya.lo) / (ya.hi - ya.lo) * plot_h; };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << coord(width) << "\" height=\""
    << coord(height) << "\" viewBox=\"0 0 " << coord(width) << " " << coord(height)
    << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  o << "<title>" << escape_xml(spec.title) << "</title>\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << coord(width) << "\" height=\"" << coord(height)
    << "\" fill=\"white\"/>\n";
  o << "<text x=\"" << coord(left + plot_w / 2) << "\" y=\"22\" text-anchor=\"middle\" "
    << "font-size=\"15\" font-weight=\"bold\">" << escape_xml(spec.title) << "</text>\n";

  // Grid and ticks.
  o << "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (const auto& [v, label] : xa.ticks)
    o << "<line x1=\"" << coord(px(v)) << "\" y1=\"" << coord(top) << "\" x2=\"" << coord(px(v))
      << "\" y2=\"" << coord(top + plot_h) << "\"/>\n";
  for (const auto& [v, label] : ya.ticks)
    o << "<line x1=\"" << coord(left) << "\" y1=\"" << coord(py_axis(v)) << "\" x2=\""
      << coord(left + plot_w) << "\" y2=\"" << coord(py_axis(v)) << "\"/>\n";
  o << "</g>\n";
  o << "<rect x=\"" << coord(left) << "\" y=\"" << coord(top) << "\" width=\"" << coord(plot_w)
    << "\" height=\"" << coord(plot_h) << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<g fill=\"#333\">\n";
  for (const auto& [v, label] : xa.ticks) {
    o << "<line x1=\"" << coord(px(v)) << "\" y1=\"" << coord(top + plot_h) << "\" x2=\""
      << coord(px(v)) << "\" y2=\"" << coord(top + plot_h + 5) << "\" stroke=\"#333\"/>\n";
    o << "<text x=\"" << coord(px(v)) << "\" y=\"" << coord(top + plot_h + 18)
      << "\" text-anchor=\"middle\">" << escape_xml(label) << "</text>\n";
  }
  for (const auto& [v, label] : ya.ticks) {
    o << "<line x1=\"" << coord(left - 5) << "\" y1=\"" << coord(py_axis(v)) << "\" x2=\""
      << coord(left) << "\" y2=\"" << coord(py_axis(v)) << "\" stroke=\"#333\"/>\n";
    o << "<text x=\"" << coord(left - 8) << "\" y=\"" << coord(py_axis(v) + 4)
      << "\" text-anchor=\"end\">" << escape_xml(label) << "</text>\n";
  }
  o << "</g>\n";
  o << "<text x=\"" << coord(left + plot_w / 2) << "\" y=\"" << coord(height - 12)
    << "\" text-anchor=\"middle\">" << escape_xml(spec.x_label) << "</text>\n";
  o << "<text x=\"16\" y=\"" << coord(top + plot_h / 2) << "\" text-anchor=\"middle\" "
    << "transform=\"rotate(-90 16 " << coord(top + plot_h / 2) << ")\">" << escape_xml(spec.y_label)
    << "</text>\n";
  if (empty)
    o << "<text x=\"" << coord(left + plot_w / 2) << "\" y=\"" << coord(top + plot_h / 2)
      << "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";

  // Curves; sparse series (e.g. evaluated every few hundred steps) also get markers, and a
  // single point, which a polyline cannot show, gets only its marker.
  for (std::size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& s = series[i];
    const char* color = kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
    if (s.points.size() >= 2) {
      o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.8\" points=\"";
      for (std::size_t k = 0; k < s.points.size(); ++k)
        o << (k ? " " : "") << coord(px(s.points[k].first)) << "," << coord(py(s.points[k].second));
      o << "\"/>\n";
    }
    if (s.points.size() <= 60) {
      o << "<g fill=\"" << color << "\">";
      for (const auto& [x, y] : s.points)
        o << "<circle cx=\"" << coord(px(x)) << "\" cy=\"" << coord(py(y)) << "\" r=\"2.5\"/>";
      o << "</g>\n";
    }
  }

  // Legend to the right of the plot so it never hides a curve.
  const double lx = left + plot_w + 15;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* color = kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
    double ly = top + 10 + 18.0 * static_cast<double>(i);
    o << "<line x1=\"" << coord(lx) << "\" y1=\"" << coord(ly) << "\" x2=\"" << coord(lx + 22)
      << "\" y2=\"" << coord(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2.5\"/>";
    o << "<text x=\"" << coord(lx + 28) << "\" y=\"" << coord(ly + 4) << "\">"
      << escape_xml(series[i].label) << (series[i].points.empty() ? " (no data)" : "")
      << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// -----------------------------------------------------------------------------------------------
// Report

int write_report(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                 const std::map<std::string, std::string>& paper_numbers, std::ostream& console) {
  if (run_dirs.empty()) throw UserError("report: no run directories given");
  const std::vector<std::string> dirs = expand_run_dirs(run_dirs);
  std::vector<RunRecord> runs;
  runs.reserve(dirs.size());
  for (const std::string& d : dirs) runs.push_back(load_run(d));
  for (const RunRecord& r : runs)
    for (const std::string& w : r.warnings) console << "warning: " << w << "\n";

  // Same seed twice in a row means two copies of one run, which would shrink the std.
  {
    std::map<std::pair<std::string, std::string>, std::string> seen;
    for (const RunRecord& r : runs) {
      std::string seed = str(r.summary, "seed");
      if (seed.empty()) continue;
      auto [it, fresh] = seen.emplace(std::make_pair(r.name(), seed), r.dir);
      if (!fresh)
        console << "warning: row " << r.name() << " has seed " << seed << " twice (" << it->second
                << " and " << r.dir << ")\n";
    }
  }

  const std::vector<ReportRow> rows = summarize_runs(runs, paper_numbers);
  const std::string table = format_markdown_table(rows);
  const std::string verdict = comparison_sentence(rows, runs);

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir))
    throw UserError("cannot create report directory " + out_dir + ": " + ec.message());
  const fs::path out(out_dir);

  // Plots.
  std::vector<std::pair<const PlotDef*, std::string>> svgs;
  for (const PlotDef& def : kPlots) {
    PlotSpec spec;
    spec.title = def.title;
    spec.x_label = "step";
    spec.y_label = def.y_label;
    spec.log_y = def.log_y;
    for (const ReportRow& r : rows) spec.series.push_back({r.name, mean_curve(r, runs, def.key)});
    std::string svg = render_svg_plot(spec);
    write_file(out / def.file, svg);
    svgs.emplace_back(&def, std::move(svg));
  }

  // Markdown.
  {
    std::ostringstream md;
    md << "# fullbatch report\n\n" << verdict << "\n\n" << table << "\n";
    md << "Accuracies in %; std is the sample standard deviation over seeds (n/a with one seed); "
          "epochs are passes over the training set; time is mean wall time per run.\n\n";
    for (const auto& [def, svg] : svgs) md << "![" << def->title << "](" << def->file << ")\n\n";
    write_file(out / "report.md", md.str());
  }

  // CSV.
  {
    std::ostringstream csv;
    csv << "row,seeds,steps_min,steps_max,epochs,val_acc_mean,val_acc_std,train_acc_mean,"
           "time_s_mean,diverged,status,paper\n";
    auto cell = [](double v) { return std::isfinite(v) ? printf_double("%.6g", v) : ""; };
    for (const ReportRow& r : rows) {
      csv << csv_field(r.name) << "," << r.runs.size() << "," << r.steps_min << "," << r.steps_max
          << "," << cell(r.epochs) << "," << cell(r.val_acc_mean) << "," << cell(r.val_acc_std)
          << "," << cell(r.train_acc_mean) << "," << cell(r.time_s_mean) << "," << r.diverged << ","
          << csv_field(r.status) << "," << csv_field(r.paper) << "\n";
    }
    write_file(out / "report.csv", csv.str());
  }

  // JSON.
  {
    json j;
    j["verdict"] = verdict;
    j["rows"] = json::array();
    for (const ReportRow& r : rows) {
      json row;
      row["name"] = r.name;
      row["seeds"] = r.runs.size();
      row["steps_min"] = r.steps_min;
      row["steps_max"] = r.steps_max;
      row["epochs"] = finite_or_null(r.epochs);
      row["val_acc_mean"] = finite_or_null(r.val_acc_mean);
      row["val_acc_std"] = finite_or_null(r.val_acc_std);
      row["val_acc_count"] = r.val_acc_count;
      row["train_acc_mean"] = finite_or_null(r.train_acc_mean);
      row["time_s_mean"] = finite_or_null(r.time_s_mean);
      row["diverged"] = r.diverged;
      row["running"] = r.running;
      row["stochastic"] = r.stochastic ? json(*r.stochastic) : json(nullptr);
      row["status"] = r.status;
      row["paper"] = r.paper.empty() ? json(nullptr) : json(r.paper);
      row["run_dirs"] = json::array();
      for (std::size_t idx : r.runs) row["run_dirs"].push_back(runs[idx].dir);
      j["rows"].push_back(std::move(row));
    }
    j["runs"] = json::array();
    for (const RunRecord& r : runs) {
      json run = r.summary;
      run["dir"] = r.dir;
      run["metrics_lines"] = r.metrics.size();
      run["warnings"] = r.warnings;
      j["runs"].push_back(std::move(run));
    }
    j["plots"] = json::array();
    for (const auto& [def, svg] : svgs) j["plots"].push_back(def->file);
    write_file(out / "report.json", j.dump(2) + "\n");
  }

  // HTML: everything inline so the single file can be mailed or archived.
  {
    std::ostringstream h;
    h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<title>fullbatch report</title>\n<style>\n"
      << "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1100px}\n"
      << "table{border-collapse:collapse;margin:1em 0}\n"
      << "th,td{border:1px solid #ccc;padding:4px 10px}\n"
      << "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
      << "p.verdict{background:#f7f7e8;border-left:4px solid #bb9;padding:.6em 1em}\n"
      << ".plots svg{display:block;margin:1em 0;max-width:100%;height:auto}\n"
      << "</style>\n</head>\n<body>\n<h1>fullbatch report</h1>\n";
    h << "<p class=\"verdict\">" << escape_xml(verdict) << "</p>\n";
    h << "<table>\n<thead><tr><th>row</th><th>seeds</th><th>steps</th><th>epochs</th>"
      << "<th>val acc. (mean ± std)</th><th>train acc.</th><th>time</th><th>status</th>"
      << "<th>paper</th></tr></thead>\n<tbody>\n";
    for (const ReportRow& r : rows) {
      h << "<tr><td>" << escape_xml(r.name) << "</td><td class=\"num\">" << r.runs.size()
        << "</td><td class=\"num\">" << steps_text(r) << "</td><td class=\"num\">"
        << fmt_num(r.epochs, 1) << "</td><td class=\"num\">" << val_text(r)
        << "</td><td class=\"num\">" << fmt_fixed(r.train_acc_mean, 2) << "</td><td class=\"num\">"
        << fmt_duration(r.time_s_mean) << "</td><td>" << escape_xml(r.status)
        << "</td><td class=\"num\">" << (r.paper.empty() ? "-" : escape_xml(r.paper))
        << "</td></tr>\n";
    }
    h << "</tbody>\n</table>\n<p>Accuracies in %; std is the sample standard deviation over "
         "seeds (n/a with one seed); time is mean wall time per run.</p>\n";
    h << "<div class=\"plots\">\n";
    for (const auto& [def, svg] : svgs) h << svg;
    h << "</div>\n<h2>Runs</h2>\n<ul>\n";
    for (const RunRecord& r : runs)
      h << "<li>" << escape_xml(r.name()) << " seed " << escape_xml(str(r.summary, "seed"))
        << ": <code>" << escape_xml(r.dir) << "</code> (" << escape_xml(str(r.summary, "status"))
        << ")</li>\n";
    h << "</ul>\n</body>\n</html>\n";
    write_file(out / "report.html", h.str());
  }

  console << table;
  console << "\n" << verdict << "\n";
  console << "report written to " << (out / "report.md").string() << " (+ .csv, .json, .html, "
          << svgs.size() << " plots)\n";
  return 0;
}

}  // namespace fullbatch
