#pragma once
// The learning rate as a pure function of (settings, step), as llm.c's schedulers are: a resumed
// run needs nothing but the step, and a test can check every step against its formula.
#include <cstdint>

#include "fullbatch/config/enums.h"

namespace fullbatch {

struct ScheduleSettings {
  double base_lr = 0.1;
  int64_t warmup = 0;  // linear warm-up steps, starting from lr 0
  ScheduleSpec kind{ScheduleKind::kConstant, 0};
  int64_t total_steps = 1;  // hyp.steps
};

// The learning rate of 0-based step `step`, as the reference's schedulers give it (torch's
// CosineAnnealingLR inside the gradual warm-up wrapper, stepped once per step):
//   W = warmup > 0, s <= W:  base * s / W            (step 0 has lr 0 and changes no weights)
//   s > W:                   decay(s - W - 1)         (the peak is held at steps W and W + 1)
//   W = 0:                   decay(s)
// decay(k): constant base; cosine-decay 0.5 base (1 + cos(pi k / steps)), a cosine with the
// period hyp.steps whose clock starts after warm-up, so the lr never reaches 0 within the run;
// cosine-N the same with period N (the reference's cosine-4000); linear-decay (ours, no reference
// counterpart) base (1 - k / steps).
double learning_rate(const ScheduleSettings& settings, int64_t step);

}  // namespace fullbatch
