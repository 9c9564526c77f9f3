#include "fullbatch/run/sweep.h"

namespace fullbatch {

// Laptop scale, paper structure. See docs/demo.md for how these numbers were chosen and timed.
namespace {
// 1,024 images are 8 blocks of 128: a pass over the data is exactly one full-batch step.
constexpr int kImages = 1024;
constexpr int kShortSteps = 8;               // the paper's 300 steps, scaled
constexpr int kLongSteps = 8 * kShortSteps;  // full batch trains longer (the paper: 10x, 3000)
constexpr int kLongWarmup = 9;               // 400 of 3000 steps, scaled to 64
constexpr int kCosinePeriod = 85;            // 4/3 of the run (cosine-4000 for 3000 steps)
// SGD until validation accuracy stops improving at this scale (docs/demo.md: 64 epochs 81.6,
// 128 epochs 83.6, 256 epochs 84.1, two seeds): 128 epochs, warm-up 5/300 of the run.
constexpr int kSgdEpochs = 128;
constexpr int kSgdWarmup = 2;
// SGD at equal compute: as many passes over the data as the long full-batch rows.
constexpr int kSgdEqualWarmup = 1;
}  // namespace

std::vector<std::string> demo_defaults() {
  // Evaluating the 10,000 test images in batches of 200 takes 0.8 s instead of 1.5 s in batches
  // of 1,000 on a 2-core CPU (docs/demo.md); results are the same (per-image, eval mode).
  return {"data.name=fashion-mnist", "data.size=" + std::to_string(kImages), "model.name=resnet18",
          "model.width=4", "impl.validate_every_nth_step=20", "impl.eval_batch_size=200"};
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
      {"base_sgd_equal", "base_sgd",
       {"hyp.steps=" + std::to_string(kLongSteps), "hyp.warmup=" + std::to_string(kSgdEqualWarmup)}},
      {"base_sgd_short", "base_sgd", {short_steps, no_warmup}},
      {"fb1", "fb1", {short_steps, no_warmup}},
      {"fb2", "fb2", longer},
      {"fbclip", "fbclip", longer},
      {"gradreg", "gradreg", longer},
  };
}

}  // namespace fullbatch
