#include "fullbatch/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace fullbatch {

double learning_rate(const ScheduleSettings& s, int64_t step) {
  if (step < s.warmup) return s.base_lr * static_cast<double>(step) / static_cast<double>(s.warmup);
  const double t = static_cast<double>(step - s.warmup);
  if (s.kind == "constant") return s.base_lr;
  double period;
  if (s.kind == "cosine-decay" || s.kind == "linear-decay") {
    period = static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup));
  } else {  // cosine-N, validated by the config
    period = std::stod(s.kind.substr(std::string("cosine-").size()));
  }
  const double progress = std::min(t / period, 1.0);
  if (s.kind == "linear-decay") return s.base_lr * (1.0 - progress);
  return s.base_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace fullbatch
