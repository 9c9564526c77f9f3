#include "fullbatch/optim/adamw.h"

#include <torch/torch.h>

#include <cmath>

#include "fullbatch/common/error.h"

namespace fullbatch {

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options,
             std::vector<double> weight_decays)
    : params_(std::move(params)),
      weight_decays_(per_parameter(std::move(weight_decays), params_.size(), options.weight_decay)),
      options_(options),
      state_(params_.size()) {
  // torch.optim.AdamW's checks, made at the keys (hyp.optim.betas, eps, weight_decay).
  for (double beta : options_.betas)
    expects(beta >= 0 && beta < 1, "AdamW: betas must be in [0, 1)");
  expects(options_.eps >= 0, "AdamW: eps must be >= 0");
  expects(options_.weight_decay >= 0, "AdamW: weight_decay must be >= 0");
}

void AdamW::step(double lr, const GradientClosure& closure) {
  torch::NoGradGuard no_grad;
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    const torch::Tensor& grad = p.grad();
    State& s = state_[i];
    if (s.step == 0) {
      s.exp_avg = torch::zeros_like(p);
      s.exp_avg_sq = torch::zeros_like(p);
      if (options_.amsgrad) s.max_exp_avg_sq = torch::zeros_like(p);
    }
    s.step += 1;
    p.mul_(1 - lr * weight_decays_[i]);  // decoupled weight decay, before the moments
    s.exp_avg.mul_(beta1).add_(grad, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(s.step));
    const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(s.step));
    torch::Tensor second = s.exp_avg_sq;
    if (options_.amsgrad) {
      s.max_exp_avg_sq = torch::maximum(s.max_exp_avg_sq, s.exp_avg_sq);
      second = s.max_exp_avg_sq;
    }
    torch::Tensor denom = (second.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
    p.addcdiv_(s.exp_avg, denom, -lr / bias_correction1);
  }
}

OptimizerState AdamW::state_dict() const {
  OptimizerState state;
  for (size_t i = 0; i < state_.size(); ++i) {
    const State& s = state_[i];
    if (s.step == 0) continue;
    state[state_key("adam.step", i)] = int_state(s.step);
    state[state_key("adam.exp_avg", i)] = s.exp_avg;
    state[state_key("adam.exp_avg_sq", i)] = s.exp_avg_sq;
    if (s.max_exp_avg_sq.defined()) state[state_key("adam.max_exp_avg_sq", i)] = s.max_exp_avg_sq;
  }
  return state;
}

void AdamW::load_state_dict(const OptimizerState& state) {
  for (size_t i = 0; i < state_.size(); ++i) {
    State s;
    // A parameter without a step count had no gradient yet: it starts afresh.
    if (state.count(state_key("adam.step", i))) {
      s.step = load_state_int(state, state_key("adam.step", i));
      if (s.step < 1)
        throw UserError("checkpoint: optimizer state '" + state_key("adam.step", i) +
                        "' must be >= 1");
      const torch::Tensor& p = params_[i];
      s.exp_avg = load_state_tensor(state, state_key("adam.exp_avg", i), p, true);
      s.exp_avg_sq = load_state_tensor(state, state_key("adam.exp_avg_sq", i), p, true);
      if (options_.amsgrad)
        s.max_exp_avg_sq = load_state_tensor(state, state_key("adam.max_exp_avg_sq", i), p, true);
    }
    state_[i] = std::move(s);
  }
}

}  // namespace fullbatch
