// demo, sweep, report.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/common/error.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/run/sweep.h"
#include "fullbatch/report/report.h"

namespace fullbatch::cli {
namespace {

std::map<std::string, std::string> paper_numbers() {
  std::map<std::string, std::string> out;
  for (const auto& p : presets()) out[p.name] = p.paper_accuracy;
  return out;
}

struct SweepArgs {
  std::vector<std::string> presets;
  std::string file;
  std::vector<uint64_t> seeds;
  std::string out;
  std::vector<std::string> overrides;
  bool quiet = false;
};

void apply_common(Sweep& sweep, const SweepArgs& a) {
  if (!a.seeds.empty()) sweep.seeds = a.seeds;
  if (!a.out.empty()) sweep.out_dir = a.out;
  sweep.common_overrides.insert(sweep.common_overrides.end(), a.overrides.begin(),
                                a.overrides.end());
  sweep.progress = !a.quiet;
}

// Runs the sweep, then writes its report into OUT/report.
int run_and_report(const Sweep& sweep) {
  const SweepOutcome outcome = run_sweep(sweep, std::cout);
  std::cout << "\n";
  const std::string report_dir = (std::filesystem::path(sweep.out_dir) / "report").string();
  write_report(outcome.run_dirs, report_dir, paper_numbers(), std::cout);
  std::cout << "report: " << report_dir << "/report.html\n";
  return 0;
}

int cmd_sweep(const SweepArgs& a) {
  Sweep sweep;
  if (!a.file.empty()) {
    if (!a.presets.empty()) throw UserError("sweep: give --presets or --file, not both");
    sweep = sweep_from_yaml(a.file);
  } else if (!a.presets.empty()) {
    sweep.rows = rows_from_presets(a.presets);
  } else {
    throw UserError("sweep: give --presets NAME,... or --file SWEEP.yaml");
  }
  apply_common(sweep, a);
  return run_and_report(sweep);
}

int cmd_demo(const SweepArgs& a) {
  Sweep sweep;
  sweep.rows = demo_ladder();
  sweep.seeds = {0, 1, 2};
  sweep.out_dir = "runs/demo";
  sweep.common_overrides = demo_defaults();
  apply_common(sweep, a);
  return run_and_report(sweep);
}

struct ReportArgs {
  std::vector<std::string> dirs;
  std::string out;
};

int cmd_report(const ReportArgs& a) {
  std::string out = a.out.empty() ? a.dirs.front() + "/report" : a.out;
  int rc = write_report(a.dirs, out, paper_numbers(), std::cout);
  std::cout << "report: " << out << "/report.html\n";
  return rc;
}

void add_sweep_options(CLI::App* s, SweepArgs& a) {
  s->add_option("--seeds", a.seeds, "seeds, e.g. --seeds 0,1,2")->delimiter(',');
  s->add_option("--out", a.out, "folder of the run directories and the report");
  s->add_flag("--quiet", a.quiet, "no progress line");
  s->add_option("overrides", a.overrides, "key=value overrides applied to every run");
}

}  // namespace

void add_experiment_commands(CLI::App& app, Commands& out) {
  auto demo = std::make_shared<SweepArgs>();
  auto* d = app.add_subcommand(
      "demo", "the paper's ladder at laptop scale on Fashion-MNIST, 3 seeds, with a report");
  add_sweep_options(d, *demo);
  out.push_back({d, [demo] { return cmd_demo(*demo); }});

  auto sweep = std::make_shared<SweepArgs>();
  auto* s = app.add_subcommand("sweep", "presets (or a YAML file of runs) x seeds, resumable");
  s->add_option("--presets", sweep->presets, "preset names, e.g. --presets base_sgd,fb1")
      ->delimiter(',');
  s->add_option("--file", sweep->file, "YAML file with runs: [...], seeds: [...], overrides: {...}");
  add_sweep_options(s, *sweep);
  out.push_back({s, [sweep] { return cmd_sweep(*sweep); }});

  auto report = std::make_shared<ReportArgs>();
  auto* r = app.add_subcommand("report", "tables, curves and an HTML page from run directories");
  r->add_option("dirs", report->dirs, "run directories or folders of them")->required();
  r->add_option("--out", report->out, "output folder (default FIRST_DIR/report)");
  out.push_back({r, [report] { return cmd_report(*report); }});
}

}  // namespace fullbatch::cli
