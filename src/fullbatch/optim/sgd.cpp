#include "fullbatch/optim/sgd.h"

#include <torch/torch.h>

#include <stdexcept>

#include "fullbatch/common/error.h"

namespace fullbatch {

Sgd::Sgd(std::vector<torch::Tensor> params, SgdOptions options, std::vector<double> weight_decays)
    : params_(std::move(params)),
      momentum_(params_.size()),
      weight_decays_(per_parameter(std::move(weight_decays), params_.size(), options.weight_decay)),
      options_(options) {
  // hyp.optim.momentum and weight_decay are checked at their keys; here they are invariants.
  expects(options_.momentum >= 0 && options_.momentum <= 1,
          "Sgd: momentum " + std::to_string(options_.momentum) + " outside [0, 1]");
  expects(options_.weight_decay >= 0, "Sgd: weight_decay must be >= 0");
  // torch.optim.SGD refuses this combination too.
  if (options_.nesterov && options_.dampening != 0)
    throw UserError(
        "hyp.optim.dampening: Nesterov momentum needs dampening 0 (set "
        "hyp.optim.nesterov=false to use dampening)");
}

void Sgd::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].grad().defined()) update(i, lr, params_[i].grad());
}

void Sgd::step_with(double lr, const std::vector<torch::Tensor>& directions) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i)
    if (directions.at(i).defined()) update(i, lr, directions[i]);
}

void Sgd::update(size_t i, double lr, const torch::Tensor& grad) {
  torch::Tensor& p = params_[i];
  torch::Tensor d = grad;
  if (weight_decays_[i] != 0) d = d.add(p, weight_decays_[i]);
  if (options_.momentum != 0) {
    torch::Tensor& buf = momentum_[i];
    if (!buf.defined()) {
      buf = d.clone();
    } else if (options_.dampening == 0) {
      buf.mul_(options_.momentum).add_(d);
    } else {
      buf.mul_(options_.momentum).add_(d, 1 - options_.dampening);
    }
    d = options_.nesterov ? d.add(buf, options_.momentum) : buf;
  }
  p.add_(d, -lr);
}

OptimizerState Sgd::state_dict() const {
  OptimizerState state;
  for (size_t i = 0; i < momentum_.size(); ++i)
    if (momentum_[i].defined()) state[state_key("momentum", i)] = momentum_[i];
  return state;
}

void Sgd::load_state_dict(const OptimizerState& state) {
  // A missing buffer is one that did not exist yet (no step had a gradient for it).
  for (size_t i = 0; i < momentum_.size(); ++i)
    momentum_[i] = load_state_tensor(state, state_key("momentum", i), params_[i], false);
}

}  // namespace fullbatch
