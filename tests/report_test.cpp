#include "fullbatch/report/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fullbatch/common/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("fullbatch_report_" + std::string(info ? info->name() : "x") + "_" +
             std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct FakeRun {
  std::string name;
  int seed;
  bool stochastic;
  double val_acc;
  double train_acc;
  double time_s;
  int steps;
  std::string status = "completed";
  bool truncate_last_line = false;
};

// Writes a run directory following the trainer's contract.
fs::path make_run(const fs::path& parent, const FakeRun& r) {
  fs::path dir = parent / (r.name + "_s" + std::to_string(r.seed));
  fs::create_directories(dir);
  std::ostringstream cfg;
  cfg << "name: " << r.name << "\nseed: " << r.seed << "\npreset: " << r.name << "\n"
      << "data:\n  name: cifar10\n  path: /data\n  size: 512\n  batch_size: 128\n"
      << "model:\n  name: resnet18\n  width: 8\n"
      << "hyp:\n  steps: " << r.steps
      << "\n  train_stochastic: " << (r.stochastic ? "true" : "false")
      << "\n  optim:\n    lr: 0.4\n  warmup: 400\n  scheduler: cosine-4000\n  grad_clip: 0.25\n";
  write_text(dir / "config.yaml", cfg.str());

  std::ostringstream m;
  for (int s = 1; s <= r.steps; ++s) {
    json line = {{"step", s},
                 {"epoch", double(s)},
                 {"lr", 0.1 * s / r.steps},
                 {"train_loss", 2.3 / s},
                 {"train_accuracy", r.train_acc * s / r.steps},
                 {"grad_norm", 1.0 + 0.01 * s},
                 {"time_s", r.time_s * s / r.steps},
                 {"step_time_s", r.time_s / r.steps},
                 {"images_per_s", 100.0}};
    if (s % 5 == 0 || s == r.steps) {
      line["val_loss"] = 1.0 / s;
      line["val_accuracy"] = r.val_acc * s / r.steps;
    }
    if (s == 3) line.erase("grad_norm");  // lines may miss fields
    m << line.dump() << "\n";
  }
  if (r.truncate_last_line) m << "{\"step\": " << r.steps + 1 << ", \"epoch\": 1";
  write_text(dir / "metrics.jsonl", m.str());

  json summary = {{"name", r.name},           {"preset", r.name},
                  {"seed", r.seed},           {"status", r.status},
                  {"steps", r.steps},         {"epochs", double(r.steps)},
                  {"train_images", 512},      {"final_val_accuracy", r.val_acc},
                  {"final_val_loss", 0.4},    {"final_train_accuracy", r.train_acc},
                  {"final_train_loss", 0.01}, {"total_time_s", r.time_s},
                  {"images_per_s", 500.0},    {"device", "cpu"},
                  {"model", "resnet18"},      {"dataset", "cifar10"}};
  write_text(dir / "summary.json", summary.dump(2));
  return dir;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

double sample_std(const std::vector<double>& v) {
  double m = mean_of(v), ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / (v.size() - 1));
}

std::string fixed2(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(' ');
  auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Cells of the Markdown table line whose first cell is `row`.
std::vector<std::string> md_row(const std::string& md, const std::string& row) {
  std::istringstream in(md);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| " + row + " |", 0) != 0) continue;
    auto parts = split(line, '|');
    std::vector<std::string> cells;
    for (std::size_t i = 1; i + 1 < parts.size(); ++i) cells.push_back(trim(parts[i]));
    return cells;
  }
  return {};
}

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// Checks that elements nest properly: every open tag is closed, in order.
::testing::AssertionResult tags_balanced(const std::string& xml) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    std::size_t end = xml.find('>', i);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed '<'";
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty() || tag[0] == '!' || tag[0] == '?') continue;
    bool closing = tag[0] == '/';
    bool self_closing = tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \t\n/"));
    // HTML void elements have no closing tag.
    static const std::vector<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
    if (self_closing || std::find(kVoid.begin(), kVoid.end(), name) != kVoid.end()) continue;
    if (!closing) {
      stack.push_back(name);
    } else {
      if (stack.empty() || stack.back() != name)
        return ::testing::AssertionFailure()
               << "</" << name << "> closes " << (stack.empty() ? "nothing" : stack.back());
      stack.pop_back();
    }
  }
  if (!stack.empty()) return ::testing::AssertionFailure() << "<" << stack.back() << "> unclosed";
  return ::testing::AssertionSuccess();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

void expect_good_svg(const std::string& svg, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);
  EXPECT_TRUE(tags_balanced(svg));
  EXPECT_EQ(lower(svg).find("nan"), std::string::npos);
  EXPECT_EQ(lower(svg).find("inf"), std::string::npos);
}

const std::vector<double> kSgdVal = {91.2, 90.5, 91.8};
const std::vector<double> kFbVal = {70.1, 72.4, 69.9};
const std::vector<double> kFbTrain = {98.0, 97.0, 99.5};

// 3 seeds of an SGD baseline and 3 of a full-batch row, one with a crash-truncated last line.
std::vector<fs::path> make_ladder(const fs::path& root) {
  std::vector<fs::path> dirs;
  for (int s = 0; s < 3; ++s)
    dirs.push_back(make_run(root, {"base_sgd", s, true, kSgdVal[s], 99.9, 60.0 + s, 20}));
  for (int s = 0; s < 3; ++s) {
    FakeRun r{"fb1", s, false, kFbVal[s], kFbTrain[s], 30.0, 20};
    r.truncate_last_line = (s == 1);
    dirs.push_back(make_run(root, r));
  }
  return dirs;
}

std::vector<std::string> as_strings(const std::vector<fs::path>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.string());
  return out;
}

}  // namespace

namespace fullbatch {

TEST(ReportTest, MarkdownRowsMatchIndependentStatistics) {
  TempDir tmp;
  auto dirs = make_ladder(tmp.path() / "runs");
  std::ostringstream console;
  int rc = write_report(as_strings(dirs), (tmp.path() / "out").string(),
                        {{"base_sgd", "95.70 (±0.05)"}, {"fb1", "75.42 (±0.13)"}}, console);
  EXPECT_EQ(rc, 0);
  const std::string md = read_text(tmp.path() / "out" / "report.md");

  auto sgd = md_row(md, "base_sgd");
  auto fb = md_row(md, "fb1");
  ASSERT_EQ(sgd.size(), 9u) << md;
  ASSERT_EQ(fb.size(), 9u) << md;
  EXPECT_EQ(fb[1], "3");
  EXPECT_EQ(fb[2], "20");
  EXPECT_EQ(fb[3], "20");
  EXPECT_EQ(fb[4], fixed2(mean_of(kFbVal)) + " ± " + fixed2(sample_std(kFbVal)));
  EXPECT_EQ(fb[5], fixed2(mean_of(kFbTrain)));
  EXPECT_EQ(fb[6], "30.0 s");
  EXPECT_EQ(fb[7], "completed");
  EXPECT_EQ(fb[8], "75.42 (±0.13)");
  EXPECT_EQ(sgd[4], fixed2(mean_of(kSgdVal)) + " ± " + fixed2(sample_std(kSgdVal)));
  EXPECT_EQ(sgd[6], "61.0 s");
  // Ladder order is the argument order, not alphabetical.
  EXPECT_LT(md.find("| base_sgd |"), md.find("| fb1 |"));

  // The console gets the table and a warning for the truncated line.
  EXPECT_NE(console.str().find("| fb1 |"), std::string::npos);
  EXPECT_NE(console.str().find("warning:"), std::string::npos);
  EXPECT_NE(console.str().find("fb1_s1"), std::string::npos);

  EXPECT_NE(md.find("does not close"), std::string::npos) << md;
  EXPECT_NE(md.find(fixed2(mean_of(kSgdVal) - mean_of(kFbVal))), std::string::npos) << md;
}

TEST(ReportTest, CsvAndJsonCarryTheSameNumbers) {
  TempDir tmp;
  auto dirs = make_ladder(tmp.path() / "runs");
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {{"fb1", "75.42"}}, console);

  std::istringstream csv(read_text(tmp.path() / "out" / "report.csv"));
  std::string header, line;
  std::getline(csv, header);
  auto cols = split(header, ',');
  auto col = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
  };
  ASSERT_LT(col("val_acc_mean"), cols.size());
  ASSERT_LT(col("val_acc_std"), cols.size());
  std::vector<std::vector<std::string>> rows;
  while (std::getline(csv, line))
    if (!line.empty()) rows.push_back(split(line, ','));
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& r : rows) ASSERT_EQ(r.size(), cols.size());
  EXPECT_EQ(rows[1][col("row")], "fb1");
  EXPECT_EQ(rows[1][col("seeds")], "3");
  EXPECT_NEAR(std::stod(rows[1][col("val_acc_mean")]), mean_of(kFbVal), 1e-3);
  EXPECT_NEAR(std::stod(rows[1][col("val_acc_std")]), sample_std(kFbVal), 1e-3);
  EXPECT_EQ(rows[1][col("paper")], "75.42");
  EXPECT_EQ(rows[0][col("paper")], "");

  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["name"], "base_sgd");
  EXPECT_EQ(j["rows"][0]["stochastic"], true);
  EXPECT_EQ(j["rows"][1]["stochastic"], false);
  EXPECT_EQ(j["rows"][0]["seeds"], 3);
  EXPECT_NEAR(j["rows"][0]["val_acc_mean"].get<double>(), mean_of(kSgdVal), 1e-9);
  EXPECT_NEAR(j["rows"][0]["val_acc_std"].get<double>(), sample_std(kSgdVal), 1e-9);
  EXPECT_TRUE(j["rows"][0]["paper"].is_null());
  EXPECT_EQ(j["rows"][1]["paper"], "75.42");
  EXPECT_EQ(j["runs"].size(), 6u);
  EXPECT_NE(j["verdict"].get<std::string>().find("does not close"), std::string::npos);
}

TEST(ReportTest, SvgPlotsAreStandaloneAndClean) {
  TempDir tmp;
  auto dirs = make_ladder(tmp.path() / "runs");
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  for (const char* f : {"val_accuracy.svg", "train_loss.svg", "grad_norm.svg", "lr.svg"}) {
    ASSERT_TRUE(fs::exists(tmp.path() / "out" / f)) << f;
    std::string svg = read_text(tmp.path() / "out" / f);
    expect_good_svg(svg, f);
    EXPECT_EQ(count(svg, "<polyline"), 2u) << f;                      // one line per row
    EXPECT_NE(svg.find(">base_sgd</text>"), std::string::npos) << f;  // legend
    EXPECT_NE(svg.find(">fb1</text>"), std::string::npos) << f;
    EXPECT_NE(svg.find(">step</text>"), std::string::npos) << f;  // x label
  }
}

TEST(ReportTest, HtmlIsSelfContained) {
  TempDir tmp;
  auto dirs = make_ladder(tmp.path() / "runs");
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  std::string html = read_text(tmp.path() / "out" / "report.html");
  EXPECT_NE(html.find("<table"), std::string::npos);
  EXPECT_NE(html.find("<td>fb1</td>"), std::string::npos);
  EXPECT_NE(html.find(fixed2(mean_of(kFbVal)) + " ± " + fixed2(sample_std(kFbVal))),
            std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 4u);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("does not close"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg\""));  // no other URLs
  EXPECT_TRUE(tags_balanced(html.substr(html.find("<html"))));
}

TEST(ReportTest, GapClosesWhenWithinStds) {
  TempDir tmp;
  std::vector<fs::path> dirs;
  const double sgd[] = {91.0, 93.0}, fb[] = {91.5, 90.5};
  for (int s = 0; s < 2; ++s)
    dirs.push_back(make_run(tmp.path(), {"sgd", s, true, sgd[s], 99, 1, 5}));
  for (int s = 0; s < 2; ++s)
    dirs.push_back(make_run(tmp.path(), {"gradreg", s, false, fb[s], 99, 1, 5}));
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  std::string md = read_text(tmp.path() / "out" / "report.md");
  EXPECT_NE(md.find("the gap closes"), std::string::npos) << md;
  EXPECT_EQ(md.find("does not close"), std::string::npos) << md;
}

TEST(ReportTest, SingleSeedAndDivergedRunsAreFlagged) {
  TempDir tmp;
  std::vector<fs::path> dirs;
  dirs.push_back(make_run(tmp.path(), {"sgd", 0, true, 90, 99, 1, 5}));
  FakeRun d{"fb2", 0, false, 10, 10, 1, 5, "diverged"};
  dirs.push_back(make_run(tmp.path(), d));
  dirs.push_back(make_run(tmp.path(), {"fb2", 1, false, 80, 99, 1, 5}));
  dirs.push_back(make_run(tmp.path(), {"fb2", 2, false, 82, 99, 1, 5}));
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  std::string md = read_text(tmp.path() / "out" / "report.md");
  auto sgd = md_row(md, "sgd");
  auto fb = md_row(md, "fb2");
  ASSERT_EQ(sgd.size(), 9u);
  ASSERT_EQ(fb.size(), 9u);
  EXPECT_EQ(sgd[4], "90.00 ± n/a");
  EXPECT_EQ(fb[7], "1/3 diverged");
  EXPECT_NE(md.find("not say whether the gap closes"), std::string::npos) << md;
  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  EXPECT_TRUE(j["rows"][0]["val_acc_std"].is_null());
  EXPECT_EQ(j["rows"][1]["diverged"], 1);
}

TEST(ReportTest, ParentFolderExpandsSortedAndDeduplicated) {
  TempDir tmp;
  make_run(tmp.path() / "sweep" / "b", {"fb1", 1, false, 70, 99, 1, 5});
  make_run(tmp.path() / "sweep" / "a", {"fb1", 0, false, 71, 99, 1, 5});
  make_run(tmp.path() / "sweep", {"sgd", 0, true, 90, 99, 1, 5});
  auto dirs = expand_run_dirs(
      {(tmp.path() / "sweep").string(), (tmp.path() / "sweep" / "sgd_s0").string()});
  ASSERT_EQ(dirs.size(), 3u);
  EXPECT_EQ(fs::path(dirs[0]).parent_path().filename(), "a");
  EXPECT_EQ(fs::path(dirs[1]).parent_path().filename(), "b");
  EXPECT_EQ(fs::path(dirs[2]).filename(), "sgd_s0");
}

TEST(ReportTest, MissingOrCorruptInputsNameTheDirectory) {
  TempDir tmp;
  const std::string missing = (tmp.path() / "no_such_run").string();
  std::ostringstream console;
  try {
    write_report({missing}, (tmp.path() / "out").string(), {}, console);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }

  fs::path run = make_run(tmp.path(), {"fb1", 0, false, 70, 99, 1, 5});
  fs::remove(run / "metrics.jsonl");
  try {
    load_run(run.string());
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(run.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl"), std::string::npos) << e.what();
  }

  fs::path bad = make_run(tmp.path(), {"fb1", 1, false, 70, 99, 1, 5});
  write_text(bad / "summary.json", "{\"name\": \"fb1\", ");
  try {
    load_run(bad.string());
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("summary.json"), std::string::npos) << e.what();
  }

  fs::path empty_parent = tmp.path() / "empty";
  fs::create_directories(empty_parent / "child");
  EXPECT_THROW(expand_run_dirs({empty_parent.string()}), UserError);
}

TEST(ReportTest, MetricsLinesWithNonFiniteOrBrokenJsonAreSkippedNotFatal) {
  TempDir tmp;
  fs::path run = make_run(tmp.path(), {"fb1", 0, false, 70, 99, 1, 4});
  std::ofstream(run / "metrics.jsonl", std::ios::app)
      << "{\"step\": 5, \"train_loss\": NaN, \"grad_norm\": Infinity, \"lr\": 0.1}\n"
      << "garbage\n";
  RunRecord r = load_run(run.string());
  ASSERT_EQ(r.metrics.size(), 5u);
  EXPECT_TRUE(r.metrics.back()["train_loss"].is_null());
  EXPECT_EQ(r.metrics.back()["lr"], 0.1);
  EXPECT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.stochastic(), std::optional<bool>(false));
  EXPECT_EQ(r.name(), "fb1");
}

TEST(ReportTest, SvgHandlesDegenerateSeries) {
  const double nan = std::nan(""), inf = HUGE_VAL;
  PlotSpec spec;
  spec.title = "a <b> & \"c\"";
  spec.x_label = "step";
  spec.y_label = "loss";
  spec.log_y = true;
  spec.series.push_back({"single", {{1, 0.5}}});
  spec.series.push_back({"constant", {{1, 2}, {2, 2}, {3, 2}}});
  spec.series.push_back({"with gaps <x>", {{1, nan}, {2, 1}, {inf, 3}, {4, 0}, {5, -1}, {6, 4}}});
  spec.series.push_back({"empty", {}});
  std::string svg = render_svg_plot(spec);
  expect_good_svg(svg, "log");
  EXPECT_NE(svg.find("a &lt;b&gt; &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_NE(svg.find("with gaps &lt;x&gt;"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find("<circle"), std::string::npos);  // single point still visible

  spec.log_y = false;
  spec.series = {{"flat", {{3, 5}, {3, 5}}}};
  expect_good_svg(render_svg_plot(spec), "constant in x and y");

  spec.series = {};
  std::string none = render_svg_plot(spec);
  expect_good_svg(none, "no series");
  EXPECT_NE(none.find("no data"), std::string::npos);
}

TEST(ReportTest, LinearTicksUseOneTwoFiveSteps) {
  PlotSpec spec;
  spec.title = "t";
  spec.series = {{"s", {{0, 0.13}, {3000, 87.4}}}};
  std::string svg = render_svg_plot(spec);
  for (const char* label : {">0<", ">20<", ">40<", ">60<", ">80<", ">100<", ">500<", ">3000<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
}

}  // namespace fullbatch
