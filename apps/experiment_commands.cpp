// demo, study, sweep, report.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/data/dataset.h"
#include "fullbatch/report/report.h"
#include "fullbatch/run/sweep.h"

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

struct DemoArgs {
  SweepArgs sweep;
  bool reproduce = false;
  ReproduceScale scale;
};

int cmd_demo(const DemoArgs& a) {
  Sweep sweep;
  if (a.reproduce) {
    if (a.scale.images < 128 || a.scale.width < 1)
      throw UserError("demo --reproduce: --images must be >= 128 (one block) and --width >= 1");
    sweep.rows = reproduce_ladder();
    sweep.seeds = {0};
    sweep.out_dir = "runs/reproduce";
    sweep.common_overrides = reproduce_defaults(a.scale);
  } else {
    sweep.rows = demo_ladder();
    sweep.seeds = {0, 1, 2};
    sweep.out_dir = "runs/demo";
    sweep.common_overrides = demo_defaults();
  }
  apply_common(sweep, a.sweep);
  return run_and_report(sweep);
}

struct StudyArgs {
  SweepArgs sweep;
  std::vector<std::string> datasets;
  std::vector<std::string> paths;  // NAME=DIR
};

std::map<std::string, std::string> dataset_paths(const std::vector<std::string>& assignments) {
  std::map<std::string, std::string> out;
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UserError("study: --path '" + a +
                      "' must be NAME=DIR (e.g. cifar10=../shared/data/cifar10)");
    out[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return out;
}

// Whether a dataset's files are there: its test split loads. The reason when not.
std::string missing_reason(const std::string& name, const std::string& path) {
  try {
    DataSpec spec{name, path, 0, 0, /*with_train=*/false};
    load_dataset(spec);
    return "";
  } catch (const UserError& e) {
    return e.what();
  }
}

// The demo's ladder on every dataset whose files are present, one sweep and report each, then
// study.md with every dataset's table and conclusion: does each step of the ladder help beyond
// Fashion-MNIST (the question the paper's commentary asks)?
int cmd_study(const StudyArgs& a) {
  const std::vector<std::string> names = a.datasets.empty() ? dataset_names() : a.datasets;
  const std::map<std::string, std::string> paths = dataset_paths(a.paths);
  const std::string root = a.sweep.out.empty() ? "runs/study" : a.sweep.out;
  std::string summary = "# Study: the ladder on every dataset present\n";
  for (const auto& name : names) {
    const auto it = paths.find(name);
    const std::string path = it == paths.end() ? "" : it->second;
    const std::string why = missing_reason(name, path);
    if (!why.empty()) {
      std::cout << "study: " << name << " skipped: " << why << "\n";
      summary += "\n## " + name + "\n\nskipped: " + why + "\n";
      continue;
    }
    Sweep sweep;
    sweep.rows = study_ladder();
    sweep.seeds = {0, 1, 2};
    sweep.common_overrides = demo_defaults();
    sweep.common_overrides.push_back("data.name=" + name);
    if (!path.empty()) sweep.common_overrides.push_back("data.path=" + path);
    apply_common(sweep, a.sweep);
    sweep.out_dir = (std::filesystem::path(root) / name).string();
    run_and_report(sweep);
    summary += "\n## " + name + "\n\n" +
               read_file((std::filesystem::path(sweep.out_dir) / "report" / "report.md").string());
  }
  ensure_writable_dir(root);
  write_file_atomic((std::filesystem::path(root) / "study.md").string(), summary);
  std::cout << "study: " << (std::filesystem::path(root) / "study.md").string() << "\n";
  return 0;
}

struct ReportArgs {
  std::vector<std::string> dirs;
  std::string out;
  std::string x_axis = "passes";
};

int cmd_report(const ReportArgs& a) {
  std::string out = a.out.empty() ? a.dirs.front() + "/report" : a.out;
  ReportOptions options;
  options.x_wall_time = a.x_axis == "time";
  int rc = write_report(a.dirs, out, paper_numbers(), std::cout, options);
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
  auto demo = std::make_shared<DemoArgs>();
  auto* d = app.add_subcommand(
      "demo", "the paper's ladder at laptop scale on Fashion-MNIST, 3 seeds, with a report");
  add_sweep_options(d, demo->sweep);
  d->add_flag("--reproduce", demo->reproduce,
              "the paper's CIFAR-10 protocol unchanged (3000 steps, its lrs and clipping) on a "
              "subset, one seed, about 2 h on 2 cores; give data.path=CIFAR10_DIR");
  d->add_option("--images", demo->scale.images, "--reproduce: CIFAR-10 training images")
      ->capture_default_str();
  d->add_option("--width", demo->scale.width, "--reproduce: ResNet-18 width")
      ->capture_default_str();
  out.push_back({d, [demo] { return cmd_demo(*demo); }});

  auto study = std::make_shared<StudyArgs>();
  auto* st = app.add_subcommand(
      "study",
      "the demo's ladder plus SGD at equal compute on every dataset present, a report each");
  st->add_option("--datasets", study->datasets,
                 "datasets, e.g. --datasets fashion-mnist,cifar10 (default: all)")
      ->delimiter(',');
  st->add_option("--path", study->paths,
                 "NAME=DIR where a dataset's files are, e.g. cifar10=../shared/data/cifar10");
  add_sweep_options(st, study->sweep);
  out.push_back({st, [study] { return cmd_study(*study); }});

  auto sweep = std::make_shared<SweepArgs>();
  auto* s = app.add_subcommand("sweep", "presets (or a YAML file of runs) x seeds, resumable");
  s->add_option("--presets", sweep->presets, "preset names, e.g. --presets base_sgd,fb1")
      ->delimiter(',');
  s->add_option("--file", sweep->file,
                "YAML file with runs: [...], seeds: [...], overrides: {...}");
  add_sweep_options(s, *sweep);
  out.push_back({s, [sweep] { return cmd_sweep(*sweep); }});

  auto report = std::make_shared<ReportArgs>();
  auto* r = app.add_subcommand("report", "tables, curves and an HTML page from run directories");
  r->add_option("dirs", report->dirs, "run directories or folders of them")->required();
  r->add_option("--out", report->out, "output folder (default FIRST_DIR/report)");
  r->add_option("--x", report->x_axis, "the curves' x axis: passes over the data, or wall time")
      ->check(CLI::IsMember({"passes", "time"}));
  out.push_back({r, [report] { return cmd_report(*report); }});
}

}  // namespace fullbatch::cli
