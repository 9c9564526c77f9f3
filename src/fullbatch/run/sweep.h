#pragma once
// Sweeps: several rows (presets plus overrides) times seeds, each a run directory under one
// folder, resumable as a whole; and the demo's ladder as such a sweep.
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace fullbatch {

// One row of a sweep: a preset (may be empty) plus overrides, under a row name.
struct SweepRow {
  std::string name;
  std::string preset;
  std::vector<std::string> overrides;  // key=value
};

struct Sweep {
  std::vector<SweepRow> rows;
  std::vector<uint64_t> seeds = {0};
  std::vector<std::string> common_overrides;  // applied to every row, after the row's own
  std::string out_dir = "runs/sweep";
  bool progress = true;
};

// Rows named after presets.
std::vector<SweepRow> rows_from_presets(const std::vector<std::string>& presets);

// A YAML file: `runs:` a list (or a map keyed by row name) of {preset, overrides}, and optional
// `seeds:` and `overrides:` (common). Throws UserError naming the file and the entry.
Sweep sweep_from_yaml(const std::string& path);

// Runs every (seed, row) one after another, each in out_dir/<row>_s<seed>. A run whose folder
// already holds a finished summary (completed or diverged) is not run again; an unfinished one
// resumes from its newest checkpoint, or, when its config no longer matches, is moved aside
// (never deleted) and started over. A diverged run is reported on `console` and the sweep goes on.
// The report over the runs is the caller's (report/ sits above run/).
struct SweepOutcome {
  std::vector<std::string> run_dirs;  // every run of the sweep, in plan order
  int diverged = 0;
};
SweepOutcome run_sweep(const Sweep& sweep, std::ostream& console);

// The paper's ladder at laptop scale (see docs/demo.md for the choices): baseline SGD, baseline
// full batch, full batch trained longer, + clipping, + gradient regularization.
std::vector<SweepRow> demo_ladder();
std::vector<std::string> demo_defaults();  // data and model overrides of the demo
// The study's rows: the demo's ladder plus SGD at equal compute (as many passes as the long
// full-batch rows), so each dataset compares full batch with SGD both converged and at equal cost.
std::vector<SweepRow> study_ladder();

// `fullbatch demo --reproduce`: the paper's CIFAR-10 ladder at its full protocol (the presets
// unchanged) on a subset and a narrower ResNet-18. The defaults are the largest that finish in
// about two hours on a 2-core CPU, one seed (measured: docs/demo.md).
struct ReproduceScale {
  int64_t images = 1024;
  int64_t width = 4;
};
std::vector<SweepRow> reproduce_ladder();
std::vector<std::string> reproduce_defaults(const ReproduceScale& scale);

}  // namespace fullbatch
