#pragma once
// Where and how kernels run: the device, threads, autocast precision, memory format and
// determinism of a run. Deciding them (resolve_execution) is a pure function of the options and
// the machine; the process-wide switches (threads, deterministic kernels) are flipped only by an
// explicit apply_process_settings, called once by whoever starts a run, never by constructing a
// Trainer. Measurements behind the defaults: docs/performance.md.
#include <torch/types.h>

#include <string>
#include <vector>

#include "fullbatch/config/enums.h"
#include "fullbatch/models/model.h"

namespace fullbatch {

// The impl.* keys that decide execution.
struct ExecutionOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int64_t threads = 0;          // 0 = one per core the process may run on
  Precision precision = Precision::kNone;
  ChannelsLast channels_last = ChannelsLast::kAuto;
  AccumulationDtype accumulation = AccumulationDtype::kFloat32;
  bool deterministic = false;
  // impl.blocks_per_pass: blocks of the full-batch step per forward/backward pass, each with its
  // own BatchNorm statistics (models/block_batchnorm.h); 1 = one block at a time.
  int64_t blocks_per_pass = 1;
};

// The options resolved for this machine.
struct Execution {
  torch::Device device = torch::kCPU;
  torch::ScalarType autocast = torch::kFloat;  // kFloat: autocast off
  bool channels_last = false;
  bool float64_accumulation = false;
};

// Resolves impl.device ("auto" picks CUDA when present); UserError for CUDA without a GPU.
torch::Device resolve_device(const std::string& device);

// Throws UserError for a combination this machine cannot run (fp16 on the CPU, CUDA absent).
Execution resolve_execution(const ExecutionOptions& options, const ModelSpec& model);

// impl.precision as an autocast dtype for a device (kFloat for none).
torch::ScalarType autocast_dtype(Precision precision, const torch::Device& device);

// impl.channels_last for a device and model: "auto" is on for CUDA, for bf16 on the CPU, and for
// float32 on the CPU where the model is measured faster in it (channels_last_is_faster_on_cpu).
bool use_channels_last(ChannelsLast setting, Precision precision, const torch::Device& device,
                       const ModelSpec& model);

// Process-wide: impl.threads and impl.deterministic. Returns one-line warnings for the user
// (bf16 on a CPU without bf16 dot products), for the caller to print.
std::vector<std::string> apply_process_settings(const ExecutionOptions& options,
                                                const Execution& execution);

// impl.threads: n > 0 threads, 0 = one per core the process may run on. "0" is resolved here
// rather than left to OpenMP because libgomp may default to a single thread in containers.
void set_threads(int64_t threads);

// Deterministic kernels (bit-reproducible GPU runs) or, when off on CUDA, cuDNN autotuning.
void apply_determinism(bool deterministic, const torch::Device& device);

// Waits for queued GPU work, so a timing includes it; nothing on the CPU.
void synchronize(const torch::Device& device);

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

// Peak memory since the last reset: CUDA max allocated bytes on a GPU, else the process's peak
// resident set size (getrusage; it can only grow, so a reset does nothing on the CPU).
int64_t peak_memory_bytes(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);

}  // namespace fullbatch
