#pragma once
// Checkpoints: the trainer's state at a step, written atomically with a checksum into the run
// directory, and the newest readable one found again when a run resumes.
#include <torch/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/run/run_dir.h"

namespace fullbatch {

// Everything a run needs to continue bit-identically. Random numbers are drawn from generators
// keyed by (seed, stream, step, block) (common/rng.h), so no generator state is stored: the seed
// (in the config) and the step are enough. (If CUDA's global generator were ever used, its state
// would have to be added here; nothing in fullbatch draws from it.) The learning-rate schedule is
// a pure function of the step, so the step is also the schedule position.
struct Checkpoint {
  int64_t step = 0;
  bool finished = false;      // written after the last step: only the final files are missing
  std::string config_yaml;    // the run's resolved config
  std::string metrics_jsonl;  // metrics.jsonl as it stood at `step`
  std::map<std::string, torch::Tensor> state;  // Trainer::state_dict(): model, BN buffers,
                                               // momentum buffers, EMA weights, step counters
};


// Writes RUN/checkpoints/step_NNNNNN.ckpt atomically (temp file, fsync, rename) and then
// deletes all but the newest `keep`. Refuses non-finite tensors (a diverged state is never
// saved). On a failed write (full disk) the older checkpoints are untouched. Returns the path.
std::string save_checkpoint(const RunDir& run, const Checkpoint& checkpoint, int64_t keep);

// Reads and validates one checkpoint file; every problem is a UserError naming the file.
Checkpoint read_checkpoint(const std::string& path);
Checkpoint decode_checkpoint_bytes(const std::string& bytes, const std::string& origin);

// Checkpoint files of a run, newest (highest step) first.
std::vector<std::string> list_checkpoints(const RunDir& run);

struct FoundCheckpoint {
  Checkpoint checkpoint;
  std::string path;
  std::vector<std::string> rejected;  // one line per newer checkpoint that could not be read
};

// The newest readable checkpoint, or nullopt when the run has none. Throws UserError when there
// are checkpoints but none is readable.
std::optional<FoundCheckpoint> newest_valid_checkpoint(const RunDir& run);

}  // namespace fullbatch
