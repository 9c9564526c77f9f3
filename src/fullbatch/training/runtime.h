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
// Throws UserError for an unknown name, for fp16 on the CPU (CUDA-only), or for a device that
// has no autocast. bf16 on the CPU pays off where the CPU has bf16 dot products (AVX512-BF16,
// AMX): 2x on the development machine (docs/performance.md); elsewhere it can be slower.
torch::ScalarType autocast_dtype(const Config& config, const torch::Device& device);

// Whether /proc/cpuinfo text lists bf16 dot-product instructions (avx512_bf16 or amx_bf16), which
// bf16 autocast on the CPU needs to be faster than fp32; cpu_has_native_bf16 reads this machine's.
bool cpuinfo_has_native_bf16(const std::string& cpuinfo);
bool cpu_has_native_bf16();

// Turns autocast (CUDA or CPU, by the device) on for its lifetime (a no-op for kFloat). Parameters,
// the accumulated full gradient and the loss stay fp32: autocast only lowers the inputs of
// matmul/conv kernels, and the backward of a cast writes fp32 gradients into the fp32 parameters'
// .grad. The destructor clears autocast's cast cache, so lowered weight copies from one step are
// never reused after the optimizer has changed the weights.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, torch::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

// impl.channels_last resolved for a device: "auto" is on for CUDA, and on the CPU only under bf16
// autocast. Measured on the CPU with libtorch 1.13 (docs/performance.md): fp32 ResNet-18 width 16
// is 1.4x faster in channels-last, but its channels-last BatchNorm sums statistics less accurately
// (a block gradient 5e-3 to 9e-3 from float64 instead of 1.4e-3 to 1.8e-3), and width 4 on 1-channel Fashion-MNIST is
// 2x slower, so fp32 stays NCHW unless asked. Under bf16 channels-last was faster at both widths
// (1.36x, 1.05x) and the BatchNorm error is lost in bf16's own.
bool use_channels_last(const Config& config, const torch::Device& device);

// impl.deterministic: deterministic kernels (bit-reproducible GPU runs, at a measured cost) or,
// when off on CUDA, cuDNN autotuning for speed. Process-wide; call before the first kernel.
void apply_determinism(bool deterministic, const torch::Device& device);

// Peak memory since the last reset: CUDA max allocated bytes on a GPU, else the process's peak
// resident set size (getrusage; it can only grow, so a reset does nothing on the CPU).
int64_t peak_memory_bytes(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);

}  // namespace fullbatch
