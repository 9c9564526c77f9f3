#pragma once
#include <cstdint>
#include <string>

namespace fullbatch {

struct ScheduleSettings {
  double base_lr = 0.1;
  int64_t warmup = 0;       // linear warm-up steps, starting from lr 0
  std::string kind = "constant";  // constant | cosine-decay | linear-decay | cosine-N
  int64_t total_steps = 1;
};

// The learning rate of 0-based step `step`: a pure function, so a resumed run needs nothing but
// the step. Warm-up: base * step / warmup (step 0 has lr 0 and changes no weights). After it the
// decay's clock starts at 0: cosine-decay reaches 0 at total_steps, cosine-N follows a cosine
// with period N (lr 0 at N steps after warm-up), like torch's CosineAnnealingLR(T_max=N).
double learning_rate(const ScheduleSettings& settings, int64_t step);

}  // namespace fullbatch
