#pragma once
// Moving the parameters away and back. The regularizer's finite differences, sharpness and
// landscape analyses evaluate the model at theta + a * v and must then return to theta exactly.
// Subtracting the step again would not (float rounding), so the parameters are copied aside
// first and copied back, bit for bit.
#include <torch/types.h>

#include "fullbatch/common/tensor_list.h"

namespace fullbatch {

class ParameterSnapshot {
 public:
  // Copies `params` aside (the tensors are shared handles: restore() writes into them).
  explicit ParameterSnapshot(TensorList params);
  // Restores on destruction unless restore() already ran, so an exception mid-perturbation
  // cannot leave the model displaced.
  ~ParameterSnapshot();
  ParameterSnapshot(const ParameterSnapshot&) = delete;
  ParameterSnapshot& operator=(const ParameterSnapshot&) = delete;

  // params += alpha * v as one fused operation per tensor (torch's add with alpha), as the
  // reference perturbs; v is cast to each parameter's dtype first.
  void add(const TensorList& v, double alpha);
  // params = saved copy, exactly.
  void restore();

 private:
  TensorList params_;
  TensorList saved_;
  bool restored_ = false;
};

}  // namespace fullbatch
