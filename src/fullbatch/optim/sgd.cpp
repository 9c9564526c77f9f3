#include "fullbatch/optim/sgd.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"

namespace fullbatch {

Sgd::Sgd(std::vector<torch::Tensor> params, SgdOptions options)
    : params_(std::move(params)), momentum_(params_.size()), options_(options) {}

void Sgd::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    torch::Tensor d = p.grad();
    if (options_.weight_decay != 0) d = d.add(p, options_.weight_decay);
    if (options_.momentum != 0) {
      torch::Tensor& buf = momentum_[i];
      if (!buf.defined()) {
        buf = d.clone();
      } else {
        buf.mul_(options_.momentum).add_(d);
      }
      d = options_.nesterov ? d.add(buf, options_.momentum) : buf;
    }
    p.add_(d, -lr);
  }
}

std::map<std::string, torch::Tensor> Sgd::state_dict() const {
  std::map<std::string, torch::Tensor> state;
  for (size_t i = 0; i < momentum_.size(); ++i)
    if (momentum_[i].defined()) state["momentum." + std::to_string(i)] = momentum_[i];
  return state;
}

void Sgd::load_state_dict(const std::map<std::string, torch::Tensor>& state) {
  for (size_t i = 0; i < momentum_.size(); ++i) {
    auto it = state.find("momentum." + std::to_string(i));
    if (it == state.end()) {
      momentum_[i] = torch::Tensor();
      continue;
    }
    if (!it->second.sizes().equals(params_[i].sizes()))
      throw UserError("checkpoint: momentum buffer " + std::to_string(i) +
                      " does not match the model's parameter shape");
    momentum_[i] = it->second.to(params_[i].options()).clone();
  }
}

}  // namespace fullbatch
