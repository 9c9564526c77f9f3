#pragma once
// Wall-clock time as fullbatch measures and prints it: one monotonic clock for step timings,
// benchmarks and progress, and one way of writing a duration for people (progress ETA, report
// tables), so the same time never reads differently in two places.
#include <chrono>
#include <string>

namespace fullbatch {

using Clock = std::chrono::steady_clock;

// Seconds elapsed since `start` on the monotonic clock.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "42.0 s" below two minutes, "12.5 min" below two hours, else "3.25 h"; "n/a" when not finite
// or negative.
std::string format_duration(double seconds);

}  // namespace fullbatch
