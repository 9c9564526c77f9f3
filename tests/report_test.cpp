#include "fullbatch/report/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
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
  double passes_per_step = 1.0;  // the metrics' epoch advances by this much per step
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
                 {"epoch", s * r.passes_per_step},
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
                  {"steps", r.steps},         {"epochs", r.steps * r.passes_per_step},
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

// Named apart from fullbatch::sample_std, which report.h makes visible and which would otherwise
// be found first inside namespace fullbatch, checking the library against itself.
double independent_std(const std::vector<double>& v) {
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

// Runs `f`, expecting a UserError whose message contains every one of `needles`.
template <class F>
void expect_user_error_naming(F f, const std::vector<std::string>& needles) {
  try {
    f();
    FAIL() << "expected UserError";
  } catch (const fullbatch::UserError& e) {
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
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
  ASSERT_EQ(sgd.size(), 13u) << md;
  ASSERT_EQ(fb.size(), 13u) << md;
  EXPECT_EQ(fb[1], "3");
  EXPECT_EQ(fb[2], "20");
  EXPECT_EQ(fb[3], "20");      // passes over the training data
  EXPECT_EQ(fb[4], "10,240");  // images processed: 20 passes x 512 training images
  EXPECT_EQ(fb[5], fixed2(mean_of(kFbVal)) + " ± " + fixed2(independent_std(kFbVal)));
  EXPECT_EQ(fb[6], fixed2(mean_of(kFbTrain)));
  EXPECT_EQ(fb[7], "0.0100");  // final training loss
  EXPECT_EQ(fb[8], fixed2(mean_of(kFbTrain) - mean_of(kFbVal)));  // generalization gap
  EXPECT_EQ(fb[9], std::to_string(std::count_if(kFbTrain.begin(), kFbTrain.end(),
                                                [](double t) { return t >= 99.0; })) +
                       "/3");
  EXPECT_EQ(fb[10], "30.0 s");
  EXPECT_EQ(fb[11], "completed");
  EXPECT_EQ(fb[12], "75.42 (±0.13)");
  EXPECT_EQ(sgd[5], fixed2(mean_of(kSgdVal)) + " ± " + fixed2(independent_std(kSgdVal)));
  EXPECT_EQ(sgd[10], "61.0 s");
  // Ladder order is the argument order, not alphabetical.
  EXPECT_LT(md.find("| base_sgd |"), md.find("| fb1 |"));

  // The console gets the table and a warning for the truncated line.
  EXPECT_NE(console.str().find("| fb1 |"), std::string::npos);
  EXPECT_NE(console.str().find("warning:"), std::string::npos);
  EXPECT_NE(console.str().find("fb1_s1"), std::string::npos);

  // SGD leads by about 20 points, about 15 standard errors: significant however it is tested.
  EXPECT_NE(md.find("SGD ahead (p < 0.001)"), std::string::npos) << md;
  EXPECT_NE(md.find(fixed2(mean_of(kSgdVal) - mean_of(kFbVal))), std::string::npos) << md;
  EXPECT_NE(md.find("at equal passes over the training data"), std::string::npos) << md;
  // The conclusion is printed too, not only written.
  EXPECT_NE(console.str().find("SGD ahead (p < 0.001)"), std::string::npos) << console.str();
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
  ASSERT_LT(col("passes"), cols.size());
  ASSERT_LT(col("images_processed"), cols.size());
  std::vector<std::vector<std::string>> rows;
  while (std::getline(csv, line))
    if (!line.empty()) rows.push_back(split(line, ','));
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& r : rows) ASSERT_EQ(r.size(), cols.size());
  EXPECT_EQ(rows[1][col("row")], "fb1");
  EXPECT_EQ(rows[1][col("seeds")], "3");
  EXPECT_NEAR(std::stod(rows[1][col("val_acc_mean")]), mean_of(kFbVal), 1e-3);
  EXPECT_NEAR(std::stod(rows[1][col("val_acc_std")]), independent_std(kFbVal), 1e-3);
  EXPECT_EQ(rows[1][col("paper")], "75.42");
  EXPECT_EQ(rows[0][col("paper")], "");
  EXPECT_EQ(rows[1][col("passes")], "20");
  EXPECT_EQ(rows[1][col("images_processed")], "10240");

  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["name"], "base_sgd");
  EXPECT_EQ(j["rows"][0]["stochastic"], true);
  EXPECT_EQ(j["rows"][1]["stochastic"], false);
  EXPECT_EQ(j["rows"][0]["seeds"], 3);
  EXPECT_NEAR(j["rows"][0]["val_acc_mean"].get<double>(), mean_of(kSgdVal), 1e-9);
  EXPECT_NEAR(j["rows"][0]["val_acc_std"].get<double>(), independent_std(kSgdVal), 1e-9);
  EXPECT_TRUE(j["rows"][0]["paper"].is_null());
  EXPECT_EQ(j["rows"][1]["paper"], "75.42");
  EXPECT_EQ(j["runs"].size(), 6u);
  EXPECT_EQ(j["rows"][1]["passes"], 20.0);
  EXPECT_EQ(j["rows"][1]["images_processed"], 10240.0);
  const json& conclusion = j["conclusion"];
  EXPECT_NE(conclusion["text"].get<std::string>().find("SGD ahead"), std::string::npos);
  EXPECT_EQ(conclusion["headline"]["a"], "fb1");
  EXPECT_EQ(conclusion["headline"]["b"], "base_sgd");
  EXPECT_NEAR(conclusion["headline"]["difference"].get<double>(),
              mean_of(kFbVal) - mean_of(kSgdVal), 1e-9);
  EXPECT_LT(conclusion["headline"]["p"].get<double>(), 0.001);
  EXPECT_EQ(conclusion["headline"]["significant"], true);
  EXPECT_LT(conclusion["headline"]["ci95"][1].get<double>(), 0);  // the interval excludes 0
  EXPECT_TRUE(conclusion["ladder"].empty());                      // one full-batch row: no ladder
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
    EXPECT_NE(svg.find(">passes over the training data</text>"), std::string::npos) << f;
    // Only validation accuracy differs between seeds here; a band of no width is not drawn.
    const bool spread = std::string(f) == "val_accuracy.svg";
    EXPECT_EQ(count(svg, "<path "), spread ? 2u : 0u) << f;  // one band per row
    EXPECT_EQ(svg.find(">shaded: min-max over seeds</text>") != std::string::npos, spread) << f;
  }
}

// The curvature plot draws the run's own optimizer's edge of stability (Nesterov by default, heavy
// ball with nesterov false) and marks unconverged Lanczos points as their own series.
TEST(ReportTest, CurvaturePlotDrawsTheOptimizersOwnStabilityLine) {
  for (bool nesterov : {true, false}) {
    TempDir tmp;
    const fs::path dir = make_run(tmp.path() / "runs", {"fb1", 0, false, 70.0, 99.0, 10.0, 6});
    if (!nesterov) {
      std::string cfg = read_text(dir / "config.yaml");
      const std::string optim = "  optim:\n    lr: 0.4\n";
      ASSERT_NE(cfg.find(optim), std::string::npos);
      cfg.replace(cfg.find(optim), optim.size(), optim + "    nesterov: false\n");
      write_text(dir / "config.yaml", cfg);
    }
    std::istringstream lines(read_text(dir / "metrics.jsonl"));
    std::ostringstream out;
    for (std::string line; std::getline(lines, line);) {
      json j = json::parse(line);
      j["top_eigenvalue"] = 3.0 + j["step"].get<int>();
      j["curvature_converged"] = j["step"].get<int>() != 2;
      out << j.dump() << "\n";
    }
    write_text(dir / "metrics.jsonl", out.str());
    std::ostringstream console;
    write_report({dir.string()}, (tmp.path() / "out").string(), {}, console);
    const std::string svg = read_text(tmp.path() / "out" / "top_eigenvalue.svg");
    expect_good_svg(svg, "top_eigenvalue.svg");
    EXPECT_NE(svg.find("fb1: 2/lr"), std::string::npos);
    EXPECT_NE(svg.find("fb1: not converged"), std::string::npos);
    if (nesterov) {
      EXPECT_NE(svg.find("(2+2m)/((1+2m) lr) (Nesterov, m=0.9)"), std::string::npos) << svg;
      EXPECT_EQ(svg.find("(heavy ball"), std::string::npos);
    } else {
      EXPECT_NE(svg.find("(2+2m)/lr (heavy ball, m=0.9)"), std::string::npos) << svg;
    }
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
  EXPECT_NE(html.find(fixed2(mean_of(kFbVal)) + " ± " + fixed2(independent_std(kFbVal))),
            std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 4u);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("SGD ahead (p &lt; 0.001)"), std::string::npos);
  EXPECT_NE(html.find("<th>passes</th>"), std::string::npos);
  EXPECT_NE(html.find("<th>images processed</th>"), std::string::npos);
  EXPECT_NE(html.find("shaded: min-max over seeds"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg\""));  // no other URLs
  EXPECT_TRUE(tags_balanced(html.substr(html.find("<html"))));
}

// Was "the gap closes" when within the sum of the stds; now a test decides, and overlapping seeds
// are reported as not significantly different, never as one side ahead.
TEST(ReportTest, OverlappingSeedsAreNotSignificantlyDifferent) {
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
  EXPECT_NE(md.find("not significantly different at the 5% level"), std::string::npos) << md;
  EXPECT_EQ(md.find(" ahead"), std::string::npos) << md;
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
  ASSERT_EQ(sgd.size(), 13u);
  ASSERT_EQ(fb.size(), 13u);
  EXPECT_EQ(sgd[5], "90.00 ± n/a");
  EXPECT_EQ(fb[11], "1/3 diverged");
  EXPECT_NE(md.find("Verdict: n/a (1 seed)"), std::string::npos) << md;
  EXPECT_NE(md.find("no test is made"), std::string::npos) << md;
  EXPECT_EQ(md.find(" ahead"), std::string::npos) << md;
  EXPECT_NE(md.find("Diverged seeds are included as reported (fb2: 1"), std::string::npos) << md;
  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  EXPECT_TRUE(j["rows"][0]["val_acc_std"].is_null());
  EXPECT_EQ(j["rows"][1]["diverged"], 1);
  EXPECT_TRUE(j["conclusion"]["headline"]["p"].is_null());
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
  expect_user_error_naming(
      [&] { write_report({missing}, (tmp.path() / "out").string(), {}, console); }, {missing});

  fs::path run = make_run(tmp.path(), {"fb1", 0, false, 70, 99, 1, 5});
  fs::remove(run / "metrics.jsonl");
  expect_user_error_naming([&] { load_run(run.string()); }, {run.string(), "metrics.jsonl"});

  fs::path bad = make_run(tmp.path(), {"fb1", 1, false, 70, 99, 1, 5});
  write_text(bad / "summary.json", "{\"name\": \"fb1\", ");
  expect_user_error_naming([&] { load_run(bad.string()); }, {bad.string(), "summary.json"});

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

  // Constant but for rounding: the mean of three seeds' lr 0.1 is 0.10000000000000002, while the
  // band's min and max are 0.1. This once made the tick step too small to advance (no end).
  spec.series = {{"lr", {{1, (0.1 + 0.1 + 0.1) / 3}, {2, (0.1 + 0.1 + 0.1) / 3}}, {{1, 0.1, 0.1}}}};
  expect_good_svg(render_svg_plot(spec), "constant up to rounding");

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

// Worked by hand: a = {1, 2, 3} has mean 2 and sample variance 1; b = {2, 4, 6, 8} has mean 5 and
// sample variance (9 + 1 + 1 + 9) / 3 = 20/3. Squared standard errors: 1/3 and (20/3)/4 = 5/3,
// summing to 2, so t = (2 - 5) / sqrt(2) = -2.1213. Welch-Satterthwaite:
// df = 2^2 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 4 / (1/18 + 25/27) = 216/53 = 4.0755 (a pooled test
// would use 5). p = 0.099913 and t_0.975(216/53) = 2.756285, so the CI is -3 ± 2.756285 sqrt(2) =
// [-6.897975, 0.897975] (p and quantile from numerical integration of the t density, mpmath).
TEST(ReportStatisticsTest, WelchTestMatchesHandComputedValues) {
  const std::optional<WelchTest> w = welch_test({1, 2, 3}, {2, 4, 6, 8});
  ASSERT_TRUE(w.has_value());
  EXPECT_DOUBLE_EQ(w->difference, -3.0);
  EXPECT_NEAR(w->t, -3 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(w->df, 216.0 / 53.0, 1e-12);
  EXPECT_NEAR(w->p, 0.0999128643, 1e-9);
  EXPECT_NEAR(w->ci.lo, -6.8979754511, 1e-7);
  EXPECT_NEAR(w->ci.hi, 0.8979754511, 1e-7);

  const std::optional<WelchTest> swapped = welch_test({2, 4, 6, 8}, {1, 2, 3});
  ASSERT_TRUE(swapped.has_value());
  EXPECT_NEAR(swapped->t, -w->t, 1e-12);
  EXPECT_NEAR(swapped->p, w->p, 1e-12);

  EXPECT_FALSE(welch_test({1}, {2, 3}).has_value());  // one seed: no variance, no test
  const std::optional<WelchTest> same = welch_test({5, 5}, {5, 5, 5});
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->p, 1.0);
  const std::optional<WelchTest> apart = welch_test({6, 6}, {5, 5});
  ASSERT_TRUE(apart.has_value());
  EXPECT_EQ(apart->p, 0.0);
}

TEST(ReportStatisticsTest, StudentTDistributionMatchesKnownValues) {
  // Two-sided p-values from tables.
  EXPECT_NEAR(student_t_two_sided_p(2.0, 10), 0.0733880348, 1e-9);
  EXPECT_NEAR(student_t_two_sided_p(1.0, 3), 0.3910022190, 1e-9);
  EXPECT_NEAR(student_t_two_sided_p(-1.0, 3), 0.3910022190, 1e-9);
  EXPECT_EQ(student_t_two_sided_p(0.0, 7), 1.0);
  // Closed forms: df = 1 is Cauchy, F(t) = 1/2 + atan(t)/pi; df = 2 has F(t) = 1/2 + t / (2
  // sqrt(2 + t^2)).
  const double pi = std::acos(-1.0);
  for (double t : {-30.0, -2.5, -0.3, 0.0, 0.7, 4.0, 100.0}) {
    EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / pi, 1e-12) << t;
    EXPECT_NEAR(student_t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-12) << t;
  }
  // 97.5% quantiles from tables, and the inverse relation.
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062047362, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.3026527297, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.975, 3), 3.1824463053, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.2281388520, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.2281388520, 1e-8);
  EXPECT_NEAR(student_t_cdf(student_t_quantile(0.9, 4.5), 4.5), 0.9, 1e-12);
  // I_x(2, 3) at x = 0.4 is P(Binomial(4, 0.4) >= 2) = 6(.16)(.36) + 4(.064)(.6) + .0256 = 0.5248;
  // I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)).
  EXPECT_NEAR(regularized_incomplete_beta(2, 3, 0.4), 0.5248, 1e-12);
  EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.5, 0.3), 2 / pi * std::asin(std::sqrt(0.3)),
              1e-12);
  EXPECT_TRUE(std::isnan(regularized_incomplete_beta(2, 3, 1.5)));
}

TEST(ReportStatisticsTest, BootstrapIntervalIsDeterministicAndCoversAClearDifference) {
  // Means exactly 10 and 0: the true difference is 10, and the seeds are far apart.
  const std::vector<double> a = {10.0, 10.1, 9.9, 10.2, 9.8}, b = {0.1, -0.1, 0.0, 0.2, -0.2};
  const Interval i = bootstrap_mean_difference(a, b);
  EXPECT_LT(i.lo, 10.0);
  EXPECT_GT(i.hi, 10.0);
  EXPECT_GT(i.lo, 9.5);   // no wider than the data allow: every resampled difference is in
  EXPECT_LT(i.hi, 10.5);  // [9.8 - 0.2, 10.2 + 0.2]
  const Interval again = bootstrap_mean_difference(a, b);
  EXPECT_EQ(again.lo, i.lo);
  EXPECT_EQ(again.hi, i.hi);
  BootstrapOptions other;
  other.seed = 7;
  const Interval reseeded = bootstrap_mean_difference(a, b, other);
  EXPECT_TRUE(reseeded.lo != i.lo || reseeded.hi != i.hi);  // the seed is really used
  EXPECT_TRUE(std::isnan(bootstrap_mean_difference({1.0}, b).lo));
}

TEST(ReportStatisticsTest, VerdictNeverCallsALeadAboveFivePercent) {
  RowComparison c;
  c.difference = 2.0;
  c.welch = WelchTest{};
  c.welch->p = 0.0501;  // prints as 0.05 either way: the verdict, not the rounding, decides
  EXPECT_EQ(verdict_text(c, "A ahead", "B ahead"),
            "not significantly different at the 5% level (p = 0.05)");
  c.welch->p = 0.0499;  // "%.2g" would print 0.05 next to "ahead"; more digits instead
  EXPECT_EQ(verdict_text(c, "A ahead", "B ahead"), "A ahead (p = 0.0499)");
  c.difference = -2.0;
  EXPECT_EQ(verdict_text(c, "A ahead", "B ahead"), "B ahead (p = 0.0499)");
  c.welch.reset();
  EXPECT_EQ(verdict_text(c, "A ahead", "B ahead"), "n/a (1 seed)");
}

// Full batch clearly ahead of an SGD row that made fewer passes, and a ladder whose first step
// helps clearly and whose second does not.
TEST(ReportTest, ConclusionTestsTheHeadlineAndEachLadderStep) {
  TempDir tmp;
  std::vector<fs::path> dirs;
  // One seed per value, `steps` steps of one pass each.
  auto add_row = [&](const std::string& name, bool stochastic, std::vector<double> vals,
                     int steps) {
    for (int s = 0; s < static_cast<int>(vals.size()); ++s)
      dirs.push_back(make_run(tmp.path(), {name, s, stochastic, vals[s], 99, 1, steps}));
  };
  add_row("sgd", true, {80.0, 80.5, 81.0}, 5);
  add_row("sgd_equal", true, {70.0, 71.0, 72.0}, 20);  // as many passes as the full-batch rows
  add_row("fb1", false, {60, 61, 62}, 20);
  add_row("fb2", false, {90, 91, 92}, 20);
  add_row("fbclip", false, {90.5, 91.5, 89.5}, 20);
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  const std::string md = read_text(tmp.path() / "out" / "report.md");

  // Headline: fb2 (best full batch, 91.00) against sgd (80.50): +10.50 points.
  EXPECT_NE(md.find("fb2 (3 seeds, 20 passes over the training data) 91.00%"), std::string::npos)
      << md;
  EXPECT_NE(md.find("Full batch minus SGD: +10.50 points, 95% CI ["), std::string::npos) << md;
  EXPECT_NE(md.find("Verdict: full batch ahead (p "), std::string::npos) << md;
  EXPECT_NE(md.find("at unequal compute: SGD made fewer passes over the training data (5 against "
                    "20)"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("flatters"), std::string::npos) << md;  // best of three full-batch rows
  // ... and at equal compute, against the SGD row with the same passes.
  EXPECT_NE(md.find("At equal compute (passes over the training data): fb2 (3 seeds, 20 passes) "
                    "91.00% against sgd_equal (3 seeds, 20 passes) 71.00%. Full batch minus SGD: "
                    "+20.00 points"),
            std::string::npos)
      << md;

  // Ladder, in table order.
  const std::size_t step1 = md.find("- fb1 → fb2: +30.00 points"),
                    step2 = md.find("- fb2 → fbclip: -0.50 points");
  ASSERT_NE(step1, std::string::npos) << md;
  ASSERT_NE(step2, std::string::npos) << md;
  EXPECT_LT(step1, step2);
  EXPECT_NE(md.find("fb2 ahead (p < 0.001)", step1), std::string::npos) << md;
  EXPECT_NE(md.find("not significantly different at the 5% level", step2), std::string::npos) << md;
  EXPECT_EQ(md.find("fb2 ahead", step2), std::string::npos) << md;
  EXPECT_EQ(md.find("fbclip ahead"), std::string::npos) << md;

  // The p-value printed for the second step is Welch's.
  const std::optional<WelchTest> w = welch_test({90.5, 91.5, 89.5}, {90, 91, 92});
  ASSERT_TRUE(w.has_value());
  EXPECT_GT(w->p, 0.05);
  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  ASSERT_EQ(j["conclusion"]["ladder"].size(), 2u);
  EXPECT_NEAR(j["conclusion"]["ladder"][1]["p"].get<double>(), w->p, 1e-12);
  EXPECT_EQ(j["conclusion"]["ladder"][1]["significant"], false);
  EXPECT_EQ(j["conclusion"]["ladder"][0]["significant"], true);

  const std::string html = read_text(tmp.path() / "out" / "report.html");
  EXPECT_NE(html.find("<li>fb1 → fb2: +30.00 points"), std::string::npos);
  EXPECT_TRUE(tags_balanced(html.substr(html.find("<html"))));
}

// Only rows that fitted their training data (every seed's final training accuracy >= 99%) are
// compared for generalization; the others are named as under-trained, in the table (fitted, gap)
// and in the conclusion.
TEST(ReportTest, GeneralizationIsComparedOnlyBetweenFittedRows) {
  TempDir tmp;
  std::vector<fs::path> dirs;
  auto add_row = [&](const std::string& name, bool stochastic, std::vector<double> vals,
                     std::vector<double> train) {
    for (int s = 0; s < static_cast<int>(vals.size()); ++s)
      dirs.push_back(make_run(tmp.path(), {name, s, stochastic, vals[s], train[s], 1, 20}));
  };
  add_row("sgd", true, {80.0, 80.5, 81.0}, {99.5, 99.0, 100.0});
  // The best full-batch row by val. accuracy did not fit in one seed: it must not be the headline.
  add_row("fbclip", false, {85.0, 86.0, 87.0}, {99.5, 98.9, 99.9});
  add_row("gradreg", false, {79.0, 80.0, 81.0}, {100.0, 99.2, 99.0});
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  const std::string md = read_text(tmp.path() / "out" / "report.md");
  EXPECT_NE(md.find("Generalization, between rows that fitted the training data (final training "
                    "accuracy at least 99% in every seed): best full batch against best SGD, by "
                    "mean validation accuracy: gradreg (3 seeds"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("Full batch minus SGD: -0.50 points"), std::string::npos) << md;
  EXPECT_NE(md.find("Under-trained (did not fit the training data, final training accuracy at "
                    "least 99% in every seed), so not compared for generalization: fbclip (final "
                    "training accuracy 99.43%)."),
            std::string::npos)
      << md;
  // The table: fitted column and the gap (train minus val., independently computed).
  const double gap = (99.5 + 98.9 + 99.9) / 3 - 86.0;
  EXPECT_NE(md.find("| " + fixed2(gap) + " | 2/3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| yes |"), std::string::npos) << md;
  json j = json::parse(read_text(tmp.path() / "out" / "report.json"));
  bool seen = false;
  for (const json& row : j["rows"])
    if (row["name"] == "fbclip") {
      seen = true;
      EXPECT_EQ(row["fitted"], false);
      EXPECT_EQ(row["fitted_seeds"], 2);
      EXPECT_NEAR(row["generalization_gap"].get<double>(), gap, 1e-9);
    }
  EXPECT_TRUE(seen) << j.dump();

  // No full-batch row fitted: no generalization comparison, and the sentence says so.
  TempDir tmp2;
  dirs.clear();
  auto add_row2 = [&](const std::string& name, bool stochastic, std::vector<double> vals,
                      double train) {
    for (int s = 0; s < static_cast<int>(vals.size()); ++s)
      dirs.push_back(make_run(tmp2.path(), {name, s, stochastic, vals[s], train, 1, 20}));
  };
  add_row2("sgd", true, {80.0, 80.5, 81.0}, 99.6);
  add_row2("fb1", false, {60, 61, 62}, 70.0);
  add_row2("fb2", false, {75, 76, 77}, 80.0);
  std::ostringstream console2;
  write_report(as_strings(dirs), (tmp2.path() / "out").string(), {}, console2);
  const std::string md2 = read_text(tmp2.path() / "out" / "report.md");
  EXPECT_NE(md2.find("No generalization comparison: no full-batch row fitted the training data"),
            std::string::npos)
      << md2;
  EXPECT_NE(md2.find("Not a generalization gap: fb2 (final training accuracy 80.00%, fitted in 0/3 seeds) "
                     "is under-trained."),
            std::string::npos)
      << md2;
  EXPECT_EQ(md2.find("Generalization, between"), std::string::npos) << md2;
  EXPECT_NE(md2.find("- fb1 → fb2: +15.00 points"), std::string::npos) << md2;
  EXPECT_NE(md2.find("fb2 (final training accuracy 80.00%, fitted in 0/3 seeds) and fb1"), std::string::npos)
      << md2;
}

// Passes and images come from the metrics' epoch, not the step count, and the plots use them as
// their x axis (or wall time, when asked).
TEST(ReportTest, PassesImagesAndTheXAxis) {
  TempDir tmp;
  std::vector<fs::path> dirs;
  for (int s = 0; s < 2; ++s) {
    FakeRun r{"fb", s, false, 70.0 + s, 99, 60, 20};
    r.passes_per_step = 0.25;
    dirs.push_back(make_run(tmp.path(), r));
  }
  std::ostringstream console;
  write_report(as_strings(dirs), (tmp.path() / "out").string(), {}, console);
  const std::string md = read_text(tmp.path() / "out" / "report.md");
  auto fb = md_row(md, "fb");
  ASSERT_EQ(fb.size(), 13u) << md;
  EXPECT_EQ(fb[2], "20");     // steps
  EXPECT_EQ(fb[3], "5");      // passes: 20 steps x 0.25
  EXPECT_EQ(fb[4], "2,560");  // images processed: 5 passes x 512 images
  EXPECT_NE(md.find("| passes | images processed |"), std::string::npos) << md;

  const std::string lr = read_text(tmp.path() / "out" / "lr.svg");
  EXPECT_NE(lr.find(">passes over the training data</text>"), std::string::npos);
  EXPECT_NE(lr.find(">5</text>"), std::string::npos);   // last x tick: 5 passes
  EXPECT_EQ(lr.find(">20</text>"), std::string::npos);  // not 20 steps

  ReportOptions by_time;
  by_time.x_wall_time = true;
  write_report(as_strings(dirs), (tmp.path() / "out_t").string(), {}, console, by_time);
  const std::string lr_t = read_text(tmp.path() / "out_t" / "lr.svg");
  EXPECT_NE(lr_t.find(">wall time (s, mean over seeds)</text>"), std::string::npos);
  EXPECT_NE(lr_t.find(">60</text>"), std::string::npos);  // the runs take 60 s
  expect_good_svg(lr_t, "wall time axis");
}

TEST(ReportTest, SvgBandIsAClosedFaintPathUnderTheLine) {
  PlotSpec spec;
  spec.title = "t";
  spec.band_label = "shaded: min-max over seeds";
  spec.series = {{"s", {{0, 1}, {1, 2}, {2, 3}}, {{0, 0.5, 1.5}, {1, 1.5, 2.5}, {2, 2.5, 3.5}}}};
  const std::string svg = render_svg_plot(spec);
  expect_good_svg(svg, "band");
  ASSERT_EQ(count(svg, "<path "), 1u);
  const std::string path = svg.substr(svg.find("<path "), svg.find("/>", svg.find("<path ")));
  EXPECT_NE(path.find("fill-opacity=\"0.18\""), std::string::npos) << path;
  EXPECT_NE(path.find(" Z\""), std::string::npos) << path;  // closed
  EXPECT_EQ(count(path, " L"), 5u) << path;                 // 3 upper + 3 lower points
  EXPECT_LT(svg.find("<path "), svg.find("<polyline"));     // drawn under the line
  // The band's extent sets the y axis: it reaches 3.5 (the line alone would end at 3.0).
  EXPECT_NE(svg.find(">3.5</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">shaded: min-max over seeds</text>"), std::string::npos);
}

}  // namespace fullbatch
