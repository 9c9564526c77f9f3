#include "fullbatch/common/param_snapshot.h"

#include <torch/torch.h>

namespace fullbatch {

ParameterSnapshot::ParameterSnapshot(TensorList params)
    : params_(std::move(params)), saved_(clone_detached(params_)) {}

ParameterSnapshot::~ParameterSnapshot() {
  if (!restored_) restore();
}

void ParameterSnapshot::perturb(const TensorList& v, const torch::Tensor& scale) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].detach().add_((v[i] * scale.to(v[i].scalar_type())).to(params_[i].scalar_type()));
  restored_ = false;
}

void ParameterSnapshot::restore() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].detach().copy_(saved_[i]);
  restored_ = true;
}

}  // namespace fullbatch
