#pragma once
// The analysis keys (analysis.*) of a Config, typed once, as training/options.h does for training.
#include <cstdint>
#include <vector>

#include "fullbatch/analysis/landscape.h"
#include "fullbatch/analysis/objective.h"
#include "fullbatch/analysis/probes.h"
#include "fullbatch/config/config.h"

namespace fullbatch {

struct AnalysisOptions {
  ObjectiveOptions objective;
  CurvatureOptions curvature;     // trace_samples as analysis.trace_samples
  bool record_trace = false;      // during training
  int64_t every_nth_step = 0;
  std::vector<double> fd_eps;
  double sam_rho = 0.05;
  double flatness_threshold = 1.0, flatness_increment = 0.1;
  int64_t flatness_max_steps = 1000;
  DirectionOptions directions;
  Grid grid;
  std::vector<double> interpolation;  // t values
  bool recompute_batchnorm = true;    // at each t (analysis.interpolation.recompute_batchnorm)
};

AnalysisOptions analysis_options(const Config& config, bool channels_last);

// The landscape's "full loss" terms (analysis.landscape.full_loss) for weights from 0-based
// training step `step` (a checkpoint's step: the steps it has completed, so the next step's lr;
// hyp.steps for a finished run's weights). The lr is the schedule's at that step, as the
// reference reads the restored optimizer's current lr, not the base lr.
FullLossTerms full_loss_terms(const Config& config, int64_t step);

}  // namespace fullbatch
