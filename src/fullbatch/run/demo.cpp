#include "fullbatch/run/sweep.h"

namespace fullbatch {

// Laptop scale, paper structure. See docs/demo.md for how these numbers were chosen and timed.
namespace {
constexpr int kShortSteps = 8;               // the paper's 300 epochs / steps, scaled
constexpr int kLongSteps = 10 * kShortSteps;  // full batch trains 10x longer (3000)
constexpr int kLongWarmup = 11;               // ~13% of the steps (400 of 3000)
constexpr int kCosinePeriod = 107;            // 4/3 of the run (cosine-4000 for 3000 steps)
// The fair SGD baseline: as many passes over the data as the long full-batch rows (80 steps over
// 1,500 images in blocks of 128 are 75.1 passes): equal compute. SGD still gains about a point
// from 75 to 128 epochs at this scale (measured curve in docs/demo.md).
constexpr int kSgdEpochs = 75;
constexpr int kSgdWarmup = 1;  // 5/300 of the run, as the paper's
}  // namespace

std::vector<std::string> demo_defaults() {
  return {"data.name=fashion-mnist", "data.size=1500", "model.name=resnet18", "model.width=4",
          "impl.validate_every_nth_step=20"};
}

std::vector<SweepRow> demo_ladder() {
  const std::string no_warmup = "hyp.warmup=0";  // 5 of 300 steps rounds to 0 of 8
  const std::vector<std::string> longer = {"hyp.steps=" + std::to_string(kLongSteps),
                                           "hyp.warmup=" + std::to_string(kLongWarmup),
                                           "hyp.scheduler=cosine-" + std::to_string(kCosinePeriod)};
  const std::string short_steps = "hyp.steps=" + std::to_string(kShortSteps);
  return {
      {"base_sgd", "base_sgd",
       {"hyp.steps=" + std::to_string(kSgdEpochs), "hyp.warmup=" + std::to_string(kSgdWarmup)}},
      {"base_sgd_short", "base_sgd", {short_steps, no_warmup}},
      {"fb1", "fb1", {short_steps, no_warmup}},
      {"fb2", "fb2", longer},
      {"fbclip", "fbclip", longer},
      {"gradreg", "gradreg", longer},
  };
}

}  // namespace fullbatch
