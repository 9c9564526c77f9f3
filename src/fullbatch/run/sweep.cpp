#include "fullbatch/run/sweep.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/config/config.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/run/run.h"
#include "fullbatch/run/run_dir.h"

namespace fullbatch {
namespace fs = std::filesystem;
namespace {

void move_aside(const std::string& dir, std::ostream& console) {
  for (int i = 1;; ++i) {
    fs::path target = dir + ".incomplete-" + std::to_string(i);
    if (fs::exists(target)) continue;
    fs::rename(dir, target);
    console << "sweep: " << dir << " was unfinished; kept as " << target.string()
            << " and started again\n";
    return;
  }
}

// A run's cost in gradient passes over its data, the unit of the sweep's ETA: an SGD epoch and a
// full-batch step are one pass each; the finite-difference regularizer adds a second pass.
double passes_of(const Config& c) {
  const bool regularized =
      c.hyp.grad_reg.block_strength != 0.0 || c.hyp.grad_reg.acc_strength != 0.0;
  return static_cast<double>(c.hyp.steps) * (regularized ? 2.0 : 1.0);
}

// An interrupted run continues from its newest checkpoint only while its config still gives
// the sweep's results; an unreadable config counts as different.
bool same_results(const std::string& config_file, const Config& wanted) {
  try {
    Config existing;
    apply_yaml_file(existing, config_file);
    return result_differences(existing, wanted).empty();
  } catch (const UserError&) {
    return false;
  }
}

std::vector<std::string> overrides_from_yaml(const YAML::Node& node, const std::string& where) {
  std::vector<std::string> out;
  if (!node) return out;
  if (!node.IsMap()) throw UserError(where + ": overrides must be a mapping of key: value");
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& n,
                                                                        const std::string& prefix) {
    for (const auto& kv : n) {
      std::string key = prefix + kv.first.as<std::string>();
      if (kv.second.IsMap()) {
        walk(kv.second, key + ".");
      } else if (kv.second.IsScalar()) {
        out.push_back(key + "=" + kv.second.Scalar());
      } else {
        throw UserError(where + ": key '" + key + "' must hold a single value");
      }
    }
  };
  walk(node, "");
  return out;
}

SweepRow row_from_yaml(const std::string& name, const YAML::Node& node, const std::string& where) {
  SweepRow row;
  row.name = name;
  if (node.IsScalar()) {  // "- fb1": a bare preset name
    row.preset = node.Scalar();
    if (row.name.empty()) row.name = row.preset;
    return row;
  }
  if (!node.IsMap()) throw UserError(where + ": each run must be a preset name or a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (key != "name" && key != "preset" && key != "overrides")
      throw UserError(where + ": unknown field '" + key + "' (expected name, preset, overrides)");
  }
  if (node["name"]) row.name = node["name"].as<std::string>();
  if (node["preset"]) row.preset = node["preset"].as<std::string>();
  if (row.name.empty()) row.name = row.preset;
  if (row.name.empty()) throw UserError(where + ": a run needs a name or a preset");
  row.overrides = overrides_from_yaml(node["overrides"], where + " run '" + row.name + "'");
  return row;
}

}  // namespace

std::vector<SweepRow> rows_from_presets(const std::vector<std::string>& names) {
  std::vector<SweepRow> rows;
  for (const auto& n : names) {
    find_preset(n);  // fail early with the list of presets
    rows.push_back({n, n, {}});
  }
  return rows;
}

Sweep sweep_from_yaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw UserError("sweep file " + path + ": cannot be read");
  } catch (const YAML::Exception& e) {
    throw UserError("sweep file " + path + ": invalid YAML at line " +
                    std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  const std::string where = "sweep file " + path;
  Sweep sweep;
  try {
    if (!root.IsMap() || !root["runs"])
      throw UserError(where + ": expected a mapping with a 'runs' list");
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key != "runs" && key != "seeds" && key != "overrides" && key != "out")
        throw UserError(where + ": unknown field '" + key +
                        "' (expected runs, seeds, overrides, out)");
    }
    const YAML::Node runs = root["runs"];
    if (runs.IsSequence()) {
      for (const auto& r : runs) sweep.rows.push_back(row_from_yaml("", r, where));
    } else if (runs.IsMap()) {
      for (const auto& kv : runs)
        sweep.rows.push_back(row_from_yaml(kv.first.as<std::string>(), kv.second, where));
    } else {
      throw UserError(where + ": 'runs' must be a list or a mapping");
    }
    if (root["seeds"]) sweep.seeds = root["seeds"].as<std::vector<uint64_t>>();
    if (root["out"]) sweep.out_dir = root["out"].as<std::string>();
    sweep.common_overrides = overrides_from_yaml(root["overrides"], where);
  } catch (const YAML::Exception& e) {
    throw UserError(where + ": " + e.msg);
  }
  if (sweep.rows.empty()) throw UserError(where + ": no runs listed");
  if (sweep.seeds.empty()) throw UserError(where + ": no seeds listed");
  return sweep;
}

SweepOutcome run_sweep(const Sweep& sweep, std::ostream& console) {
  // Resolve every config before running anything: a typo in the last row fails in a second,
  // not after an hour of training.
  struct Planned {
    Config config;
    RunDir dir;
  };
  std::vector<Planned> plan;
  for (uint64_t seed : sweep.seeds) {
    for (const auto& row : sweep.rows) {
      std::vector<std::string> o = row.overrides;
      o.insert(o.end(), sweep.common_overrides.begin(), sweep.common_overrides.end());
      o.push_back("seed=" + std::to_string(seed));
      o.push_back("name=" + row.name);
      Config c = resolve_config(row.preset, {}, o);
      plan.push_back({c, RunDir::in_sweep(sweep.out_dir, row.name, seed)});
    }
  }
  SweepOutcome outcome;
  size_t index = 0;
  // The sweep's ETA: seconds per pass measured on the runs trained in this process, applied to
  // the passes still to train.
  double remaining_passes = 0.0, trained_passes = 0.0, trained_seconds = 0.0;
  for (const auto& p : plan)
    if (!p.dir.finished()) remaining_passes += passes_of(p.config);
  for (const auto& p : plan) {
    ++index;
    const std::string& dir = p.dir.path();
    outcome.run_dirs.push_back(dir);
    const std::string status = p.dir.status();
    if (p.dir.finished()) {
      console << "sweep [" << index << "/" << plan.size() << "] " << dir << ": already " << status
              << ", not rerun\n";
      outcome.diverged += status == "diverged";
      continue;
    }
    const bool resume = p.dir.holds_run() && fs::exists(p.dir.config_file()) &&
                        same_results(p.dir.config_file(), p.config);
    if (!resume && p.dir.exists()) move_aside(dir, console);
    console << "sweep [" << index << "/" << plan.size() << "] " << p.config.name << " seed "
            << p.config.seed << (resume ? " (resumed)" : "") << " -> " << dir;
    if (trained_passes > 0)
      console << "  (sweep ETA "
              << format_duration(trained_seconds / trained_passes * remaining_passes) << ")";
    console << std::endl;  // a log file shows which run is training, not only at the end
    const Clock::time_point start = Clock::now();
    try {
      run_training(p.config, {dir, resume, sweep.progress});
    } catch (const DivergenceError& e) {
      console << "sweep: " << p.config.name << " seed " << p.config.seed << ": " << e.what()
              << "\n";
      ++outcome.diverged;
    }
    // A resumed run trained only part of its passes: it counts fully, which errs on the early side.
    trained_seconds += seconds_since(start);
    trained_passes += passes_of(p.config);
    remaining_passes -= passes_of(p.config);
  }
  return outcome;
}

}  // namespace fullbatch
