#pragma once
// The console's view of a running training: one line, rewritten in place on a terminal (a line
// per evaluation otherwise), with an ETA from the mean step time so far.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fullbatch/training/step_record.h"

namespace fullbatch {

class Progress {
 public:
  Progress(std::string label, int64_t total_steps, bool enabled, std::FILE* out = stderr);
  void update(const StepRecord& record);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  std::FILE* out_;
  double last_val_ = -1;
  bool dirty_ = false;
};

}  // namespace fullbatch
