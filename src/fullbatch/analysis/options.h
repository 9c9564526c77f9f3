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
  FullLossTerms full_loss;
  std::vector<double> interpolation;  // t values
};

AnalysisOptions analysis_options(const Config& config, bool channels_last);

}  // namespace fullbatch
