#pragma once
// The one place where fullbatch bridges the libtorch versions it builds against: Debian's 1.13
// (the default build) and a current 2.x (the PyTorch wheel, scripts/test_torch2.sh). Everything
// that changed name or shape between them is wrapped here once, so no other file tests a torch
// version: autocast's per-device-type calls (2.4), and c10d's Backend classes (2.0) that the Gloo
// and NCCL groups became. Anything new of this kind belongs here too.
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

// True when the libtorch being compiled against is at least version major.minor.
#define FULLBATCH_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||            \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// Declared only: the c10d headers need Gloo's and are included by distributed/ alone.
namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

namespace fullbatch::compat {

// The class whose collectives (allreduce, broadcast, barrier) the Gloo and NCCL groups expose:
// since 2.0 they are c10d::Backend subclasses, before that c10d::ProcessGroup ones.
#if FULLBATCH_TORCH_AT_LEAST(2, 0)
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif

// Autocast keeps one switch and one low-precision dtype per device type (CPU, CUDA). PyTorch 2.4
// made these calls generic over the device type and deprecated the CUDA- and CPU-named ones.
struct AutocastState {
  bool enabled;
  c10::ScalarType dtype;
};

inline AutocastState autocast_state(c10::DeviceType type) {
#if FULLBATCH_TORCH_AT_LEAST(2, 4)
  return {at::autocast::is_autocast_enabled(type), at::autocast::get_autocast_dtype(type)};
#else
  if (type == c10::DeviceType::CUDA) {
    return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  }
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

inline void set_autocast(c10::DeviceType type, bool enabled, c10::ScalarType dtype) {
#if FULLBATCH_TORCH_AT_LEAST(2, 4)
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

}  // namespace fullbatch::compat
