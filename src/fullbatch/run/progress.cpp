#include "fullbatch/run/progress.h"

#include <unistd.h>

#include <cmath>

#include "fullbatch/common/clock.h"

namespace fullbatch {

Progress::Progress(std::string label, int64_t total_steps, bool enabled, std::FILE* out)
    : label_(std::move(label)), total_(total_steps), enabled_(enabled), tty_(isatty(fileno(out))),
      out_(out) {}

void Progress::update(const StepRecord& r) {
  if (!enabled_) return;
  if (r.val_accuracy) last_val_ = *r.val_accuracy;
  if (!tty_ && !r.val_accuracy) return;
  const double eta = r.time_s / static_cast<double>(r.step) * static_cast<double>(total_ - r.step);
  char val[32] = "";
  if (last_val_ >= 0) std::snprintf(val, sizeof(val), " val %.2f%%", last_val_);
  std::fprintf(out_, "%s[%s] step %lld/%lld  loss %.4f  acc %.2f%%%s  |g| %.3g  lr %.4g  %.0f img/s  ETA %s%s",
               tty_ ? "\r\033[K" : "", label_.c_str(), static_cast<long long>(r.step),
               static_cast<long long>(total_), r.train_loss, r.train_accuracy, val, r.grad_norm, r.lr,
               r.images_per_s, format_duration(eta).c_str(), tty_ ? "" : "\n");
  std::fflush(out_);
  dirty_ = tty_;
}

void Progress::finish() {
  if (dirty_) std::fprintf(out_, "\n");
  dirty_ = false;
}

}  // namespace fullbatch
