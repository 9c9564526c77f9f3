#include "fullbatch/run/sweep.h"

namespace fullbatch {

// Laptop scale, paper structure. See docs/demo.md for how these numbers were chosen and timed.
namespace {
constexpr int kSgdEpochs = 8;                 // the paper: 300
constexpr int kLongSteps = 10 * kSgdEpochs;   // full batch trains 10x the SGD epochs (3000)
constexpr int kLongWarmup = 11;               // ~13% of the steps (400 of 3000)
constexpr int kCosinePeriod = 107;            // 4/3 of the run (cosine-4000 for 3000 steps)
}  // namespace

std::vector<std::string> demo_defaults() {
  return {"data.name=fashion-mnist", "data.size=1500", "model.name=resnet18", "model.width=4",
          "impl.validate_every_nth_step=20"};
}

std::vector<SweepRow> demo_ladder() {
  const std::string sgd_warmup = "hyp.warmup=0";  // 5 of 300 epochs rounds to 0 of 8
  const std::vector<std::string> longer = {"hyp.steps=" + std::to_string(kLongSteps),
                                           "hyp.warmup=" + std::to_string(kLongWarmup),
                                           "hyp.scheduler=cosine-" + std::to_string(kCosinePeriod)};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  return {
      {"base_sgd", "base_sgd", {"hyp.steps=" + std::to_string(kSgdEpochs), sgd_warmup}},
      {"fb1", "fb1", {"hyp.steps=" + std::to_string(kSgdEpochs), sgd_warmup}},
      {"fb2", "fb2", longer},
      {"fbclip", "fbclip", longer},
      {"gradreg", "gradreg", longer},
  };
}

}  // namespace fullbatch
