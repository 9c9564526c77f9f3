#pragma once
// A model's parameters, gradients or a direction in parameter space are lists of tensors, one
// per parameter, in the model's parameter order. The few operations every layer needs on such
// lists live here: gradients read off parameters, and norms summed in float64.
#include <torch/types.h>

#include <vector>

namespace fullbatch {

using TensorList = std::vector<torch::Tensor>;

// The gradients of `params` (each .grad(), zeros where undefined).
TensorList gradients_of(const TensorList& params);

// The global norm over all tensors: l2 (norm_type 2) or max-abs (norm_type inf). A 0-dim float64
// tensor on the tensors' device, so callers decide when to synchronize. Each tensor's norm comes
// from torch's cascaded reduction in its own dtype (no float64 copy of every gradient); the
// per-tensor squares are combined in float64.
torch::Tensor global_norm(const TensorList& tensors, double norm_type = 2.0);

// Detached deep copies.
TensorList clone_detached(const TensorList& tensors);

}  // namespace fullbatch
