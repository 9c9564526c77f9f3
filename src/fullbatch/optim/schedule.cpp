#include "fullbatch/optim/schedule.h"

#include <cmath>

namespace fullbatch {
namespace {

// The decay after warm-up, at its own clock k (0 at its start): torch's schedulers in closed form.
double after_warmup(const ScheduleSettings& s, double k) {
  switch (s.kind.kind) {
    case ScheduleKind::kConstant:
      return s.base_lr;
    case ScheduleKind::kLinearDecay:
      return s.base_lr * std::max(0.0, 1.0 - k / static_cast<double>(s.total_steps));
    case ScheduleKind::kCosineDecay:
      return 0.5 * s.base_lr * (1.0 + std::cos(M_PI * k / static_cast<double>(s.total_steps)));
    case ScheduleKind::kCosinePeriod:
      return 0.5 * s.base_lr * (1.0 + std::cos(M_PI * k / static_cast<double>(s.kind.period)));
  }
  return s.base_lr;
}

}  // namespace

double learning_rate(const ScheduleSettings& s, int64_t step) {
  if (s.warmup == 0) return after_warmup(s, static_cast<double>(step));
  if (step <= s.warmup) return s.base_lr * static_cast<double>(step) / static_cast<double>(s.warmup);
  // The warm-up wrapper hands over to the decay one step late: the peak is held at steps W and
  // W + 1, and the decay's clock starts at step W + 1.
  return after_warmup(s, static_cast<double>(step - s.warmup - 1));
}

}  // namespace fullbatch
