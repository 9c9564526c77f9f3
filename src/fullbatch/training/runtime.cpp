#include "fullbatch/training/runtime.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <sched.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "fullbatch/common/error.h"
#include "fullbatch/common/torch_compat.h"

#ifdef FULLBATCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace fullbatch {

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

void set_threads(int64_t threads) {
  int n = static_cast<int>(threads);
  if (n <= 0) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    n = ::sched_getaffinity(0, sizeof mask, &mask) == 0
            ? CPU_COUNT(&mask)
            : static_cast<int>(std::thread::hardware_concurrency());
  }
  if (n > 0) torch::set_num_threads(n);
}

torch::Device resolve_device(const std::string& device) {
  if (device == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::kCPU;
  if (device.rfind("cuda", 0) == 0 && !torch::cuda::is_available())
    throw UserError("config key 'impl.device': '" + device +
                    "' requested but this libtorch sees no CUDA device");
  return torch::Device(device);
}

torch::ScalarType autocast_dtype(Precision precision, const torch::Device& device) {
  if (precision == Precision::kNone) return torch::kFloat;
  const std::string name = to_string(precision);
  if (!device.is_cuda() && !device.is_cpu())
    throw UserError("config key 'impl.mixed_precision': " + name +
                    " autocast is not supported on " + device.str() +
                    "; use impl.mixed_precision=none");
  if (precision == Precision::kFp16 && device.is_cpu())
    throw UserError(
        "config key 'impl.mixed_precision': fp16 autocast is CUDA-only; use bf16 on the CPU");
  return precision == Precision::kBf16 ? torch::kBFloat16 : torch::kHalf;
}

bool use_channels_last(ChannelsLast setting, Precision precision, const torch::Device& device,
                       const ModelSpec& model) {
  if (setting != ChannelsLast::kAuto) return setting == ChannelsLast::kOn;
  return device.is_cuda() || precision == Precision::kBf16 || channels_last_is_faster_on_cpu(model);
}

Execution resolve_execution(const ExecutionOptions& options, const ModelSpec& model) {
  Execution e;
  e.device = resolve_device(options.device);
  e.autocast = autocast_dtype(options.precision, e.device);
  e.channels_last = use_channels_last(options.channels_last, options.precision, e.device, model);
  e.float64_accumulation = options.accumulation == AccumulationDtype::kFloat64;
  return e;
}

std::vector<std::string> apply_process_settings(const ExecutionOptions& options,
                                                const Execution& execution) {
  set_threads(options.threads);
  apply_determinism(options.deterministic, execution.device);
  std::vector<std::string> warnings;
  if (execution.device.is_cpu() && execution.autocast == torch::kBFloat16 && !cpu_has_native_bf16())
    warnings.push_back(
        "impl.mixed_precision=bf16 on a CPU without bf16 dot products (no avx512_bf16 or "
        "amx_bf16 in /proc/cpuinfo): expect it slower than fp32");
  return warnings;
}

AutocastScope::AutocastScope(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat || !(device.is_cuda() || device.is_cpu())) return;
  active_ = true;
  type_ = device.type();
  const compat::AutocastState previous = compat::autocast_state(type_);
  was_enabled_ = previous.enabled;
  previous_dtype_ = previous.dtype;
  at::autocast::increment_nesting();
  compat::set_autocast(type_, true, dtype);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  compat::set_autocast(type_, was_enabled_, previous_dtype_);
  // Like torch.autocast's __exit__: the outermost scope drops the cached low-precision weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

bool cpuinfo_has_native_bf16(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    const size_t colon = line.find(':');
    std::istringstream words(colon == std::string::npos ? std::string() : line.substr(colon + 1));
    std::string flag;
    while (words >> flag)
      if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
    return false;  // every core lists the same flags
  }
  return false;
}

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  return cpuinfo_has_native_bf16(text.str());
}

void apply_determinism(bool deterministic, const torch::Device& device) {
  auto& ctx = at::globalContext();
  if (deterministic && device.is_cuda()) {
    // cuBLAS needs a fixed workspace layout to be deterministic; it reads this at first use.
    ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  }
  // warn_only=false: an op without a deterministic kernel raises instead of silently varying.
  ctx.setDeterministicAlgorithms(deterministic, false);
  ctx.setDeterministicCuDNN(deterministic);
  // Autotuning picks kernels by timing, which varies run to run; worth it only when allowed to.
  ctx.setBenchmarkCuDNN(!deterministic && device.is_cuda());
}

int64_t peak_memory_bytes(const torch::Device& device) {
#ifdef FULLBATCH_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].peak;  // index 0: aggregate over pool types
  }
#endif
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

void reset_peak_memory(const torch::Device& device) {
#ifdef FULLBATCH_WITH_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
}

}  // namespace fullbatch
