#pragma once
// One training run end to end: config, trainer, metrics, progress, checkpoints and the run
// directory's files, resumable, and with a divergence ending as a one-line error that keeps
// everything already written.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "fullbatch/config/config.h"
#include "fullbatch/distributed/communicator.h"

namespace fullbatch {

struct RunOptions {
  std::string out_dir;
  bool resume = false;
  bool progress = true;
};

// Trains one run end to end and writes its run directory (rank 0 only): config.yaml,
// metrics.jsonl, summary.json, model.pt. Returns the summary. A diverged run writes a summary
// with status "diverged" and throws UserError saying at which step.
nlohmann::json run_training(const Config& config, const RunOptions& options,
                            std::shared_ptr<Communicator> comm = nullptr);

}  // namespace fullbatch
