#include "fullbatch/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace fullbatch {

double learning_rate(const ScheduleSettings& s, int64_t step) {
  if (step < s.warmup) return s.base_lr * static_cast<double>(step) / static_cast<double>(s.warmup);
  if (s.kind.kind == ScheduleKind::kConstant) return s.base_lr;
  const double t = static_cast<double>(step - s.warmup);
  const double period = s.kind.kind == ScheduleKind::kCosinePeriod
                            ? static_cast<double>(s.kind.period)
                            : static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup));
  const double progress = std::min(t / period, 1.0);
  if (s.kind.kind == ScheduleKind::kLinearDecay) return s.base_lr * (1.0 - progress);
  return s.base_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace fullbatch
