#include "fullbatch/common/param_snapshot.h"

#include <torch/torch.h>

namespace fullbatch {

ParameterSnapshot::ParameterSnapshot(TensorList params)
    : params_(std::move(params)), saved_(clone_detached(params_)) {}

ParameterSnapshot::~ParameterSnapshot() {
  if (!restored_) restore();
}

void ParameterSnapshot::add(const TensorList& v, double alpha) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].detach().add_(v[i].to(params_[i].scalar_type()), alpha);
  restored_ = false;
}

void ParameterSnapshot::restore() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].detach().copy_(saved_[i]);
  restored_ = true;
}

}  // namespace fullbatch
