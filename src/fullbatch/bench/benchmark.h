#pragma once
// The `fullbatch bench` measurements: the median time and throughput of full-batch steps,
// regularized steps, an SGD epoch, an evaluation pass and the data pipeline alone, for a config, so
// that speed claims come from a command rather than from a timed test (docs/performance.md).
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "fullbatch/config/config.h"

namespace fullbatch {

// What `fullbatch bench` measures besides the config (model, data, device, precision).
struct BenchOptions {
  int64_t steps = 3;   // timed full-batch (and regularized) steps; the median is reported
  int64_t warmup = 1;  // untimed steps first: allocator, oneDNN/cuDNN kernel selection
  bool regularized = true;
  bool sgd = true;      // one timed SGD epoch
  bool eval = true;     // one timed pass over the test set
  bool profile = true;  // time the data pipeline (gather + crop-flip + normalize) of one step alone
  double reg_strength = 0.5;  // hyp.grad_reg.block_strength of the regularized step
};

// Splits key=value arguments into bench options (steps, warmup, parts, reg_strength) and config
// overrides (everything else), so the CLI and bench/reference_step.py read the same arguments.
// parts: a comma list of full,reg,sgd,eval,profile (full is always measured).
BenchOptions take_bench_options(std::vector<std::string>& overrides);

// Measures the config's training and evaluation throughput. Progress lines go to `log`.
// The result holds the device, threads, model FLOPs when known, and for each part the median
// step time, images/s and the peak memory.
nlohmann::json run_benchmark(const Config& config, const BenchOptions& options,
                             const std::function<void(const std::string&)>& log);

// A human-readable table of run_benchmark's result.
std::string format_benchmark(const nlohmann::json& result);

// Multiply-accumulates of one forward pass of one image through the convolutions and the linear
// layer, for the CIFAR ResNet-18 (basic blocks 2-2-2-2) of the given width; 0 for other models.
// Training costs about 3 forward passes (2 FLOPs per MAC): 6 * MACs per image.
int64_t resnet18_forward_macs(int64_t width, int64_t in_channels, int64_t size, int64_t classes);

}  // namespace fullbatch
