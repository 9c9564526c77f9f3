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
  int64_t total_steps = 1;
};

// The learning rate of 0-based step `step`. Warm-up: base * step / warmup (step 0 has lr 0 and
// changes no weights). After it the decay's clock starts at 0: cosine-decay and linear-decay reach
// 0 at total_steps, cosine-N follows a cosine with period N (lr 0 at N steps after warm-up), like
// torch's CosineAnnealingLR(T_max=N).
double learning_rate(const ScheduleSettings& settings, int64_t step);

}  // namespace fullbatch
