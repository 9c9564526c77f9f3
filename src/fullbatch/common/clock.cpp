#include "fullbatch/common/clock.h"

#include <cmath>
#include <cstdio>

namespace fullbatch {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "n/a";
  char buf[32];
  if (seconds < 120) {
    std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  } else if (seconds < 7200) {
    std::snprintf(buf, sizeof(buf), "%.1f min", seconds / 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f h", seconds / 3600);
  }
  return buf;
}

}  // namespace fullbatch
