#include "fullbatch/training/runtime.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <sched.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "fullbatch/common/error.h"

#ifdef FULLBATCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

// PyTorch 2.4 replaced the CUDA-only autocast setters by per-device-type ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define FULLBATCH_AUTOCAST_PER_DEVICE 1
#endif

namespace fullbatch {
namespace {

// Autocast state is per device type: CUDA and CPU each have their own switch and dtype.
bool autocast_enabled(c10::DeviceType type) {
#ifdef FULLBATCH_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                       : at::autocast::is_cpu_enabled();
#endif
}

torch::ScalarType autocast_dtype_of(c10::DeviceType type) {
#ifdef FULLBATCH_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(c10::DeviceType type, bool enabled, torch::ScalarType dtype) {
#ifdef FULLBATCH_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

}  // namespace

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

torch::ScalarType autocast_dtype(const Config& config, const torch::Device& device) {
  const std::string& mp = config.impl.mixed_precision;
  if (mp == "none") return torch::kFloat;
  if (mp != "bf16" && mp != "fp16")
    throw UserError("config key 'impl.mixed_precision': '" + mp + "' is not none, bf16 or fp16");
  if (!device.is_cuda() && !device.is_cpu())
    throw UserError("config key 'impl.mixed_precision': " + mp + " autocast is not supported on " +
                    device.str() + "; use impl.mixed_precision=none");
  if (mp == "fp16" && device.is_cpu())
    throw UserError(
        "config key 'impl.mixed_precision': fp16 autocast is CUDA-only; use bf16 on the CPU");
  return mp == "bf16" ? torch::kBFloat16 : torch::kHalf;
}

AutocastScope::AutocastScope(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat || !(device.is_cuda() || device.is_cpu())) return;
  active_ = true;
  type_ = device.type();
  was_enabled_ = autocast_enabled(type_);
  previous_dtype_ = autocast_dtype_of(type_);
  at::autocast::increment_nesting();
  set_autocast(type_, true, dtype);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  set_autocast(type_, was_enabled_, previous_dtype_);
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

bool use_channels_last(const Config& config, const torch::Device& device) {
  const std::string& v = config.impl.channels_last;
  if (v == "true") return true;
  if (v == "false") return false;
  if (device.is_cuda()) return true;
  return config.impl.mixed_precision == "bf16";
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
