#pragma once
#include <torch/types.h>

#include <string>

#include "fullbatch/config/config.h"

namespace fullbatch {

// Process-wide runtime settings of a run: threads, precision, determinism, and memory readings.

// impl.threads: n > 0 threads, 0 = one per core the process may run on. "0" is resolved here
// rather than left to OpenMP because libgomp may default to a single thread in containers.
void set_threads(int64_t threads);

// Waits for queued GPU work, so a timing includes it; nothing on the CPU.
void synchronize(const torch::Device& device);

// impl.mixed_precision as a dtype: nullopt-like kFloat for "none", else kBFloat16 / kHalf.
// Throws UserError for an unknown name, or for bf16/fp16 on a non-CUDA device: on the CPU
// autocast to bf16 measured slower than fp32 here, and fp16 autocast is CUDA-only.
torch::ScalarType autocast_dtype(const Config& config, const torch::Device& device);

// Turns CUDA autocast on for its lifetime (a no-op for kFloat). Parameters, the accumulated full
// gradient and the loss stay fp32: autocast only lowers the inputs of matmul/conv kernels, and
// the backward of a cast writes fp32 gradients into the fp32 parameters' .grad.
// The destructor clears autocast's cast cache, so lowered weight copies from one step are never
// reused after the optimizer has changed the weights.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, torch::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

// impl.deterministic: deterministic kernels (bit-reproducible GPU runs, at a measured cost) or,
// when off on CUDA, cuDNN autotuning for speed. Process-wide; call before the first kernel.
void apply_determinism(bool deterministic, const torch::Device& device);

// Peak memory since the last reset: CUDA max allocated bytes on a GPU, else the process's peak
// resident set size (getrusage; it can only grow, so a reset does nothing on the CPU).
int64_t peak_memory_bytes(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);

}  // namespace fullbatch
