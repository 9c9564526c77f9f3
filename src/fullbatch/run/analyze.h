#pragma once
// `fullbatch analyze`: the analyses of analysis/ on a run's weights, with the run's own config for
// data, blocks, loss and BatchNorm handling, results written into RUN/analysis/ (or --out): one
// JSON file per single measurement, one JSON-lines file per landscape or interpolation (resumable).
// Also the hook that records curvature into metrics.jsonl during training
// (analysis.every_nth_step).
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "fullbatch/analysis/options.h"
#include "fullbatch/distributed/communicator.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch {

struct AnalyzeRequest {
  std::string source;             // a run directory, its model.pt, or a checkpoint (.ckpt)
  std::string other;              // a second one, for the interpolation
  std::vector<std::string> what;  // analysis_names(); empty = curvature, fd-error, sam, gradients
  std::string out_dir;            // empty: <run>/analysis
  std::vector<std::string> configs;    // YAML files over the run's config
  std::vector<std::string> overrides;  // key=value over those (analysis.* keys)
};

// curvature, fd-error, sam, flatness, gradients, landscape, interpolation
const std::vector<std::string>& analysis_names();

// Runs what the request asks and returns {"out_dir", "files", and each analysis' numbers}.
nlohmann::json run_analysis(const AnalyzeRequest& request, std::shared_ptr<Communicator> comm);

// The fields a step's metrics line gets when analysis.every_nth_step asks for them:
// top_eigenvalue (and hessian_trace), with the number of Hessian-vector products used.
nlohmann::json curvature_fields(Trainer& trainer, const AnalysisOptions& options, Communicator& comm);

}  // namespace fullbatch
