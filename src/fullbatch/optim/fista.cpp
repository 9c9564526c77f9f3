#include "fullbatch/optim/fista.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"

namespace fullbatch {

Fista::Fista(std::vector<torch::Tensor> params, FistaOptions options)
    : params_(std::move(params)), options_(options), x_prev_(params_.size()), tk_(params_.size()) {
  for (double v : options_.fista_mod) expects(v >= 0, "Fista: p, q and r must be >= 0");
}

void Fista::step(double lr, const GradientClosure& closure) {
  torch::NoGradGuard no_grad;
  const double p_factor = options_.fista_mod[0], q_factor = options_.fista_mod[1],
               r_factor = options_.fista_mod[2];
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& param = params_[i];
    if (!param.grad().defined()) continue;
    if (!x_prev_[i].defined()) {
      x_prev_[i] = param.detach().clone();
      tk_[i] = torch::ones({1}, param.options());
    }
    torch::Tensor x_next = param.sub(param.grad().mul(lr));
    // The same operations in the same order as the reference, in the parameter's dtype.
    torch::Tensor tk = tk_[i].pow(2).mul(r_factor).add(q_factor).sqrt().add(p_factor).div(2);
    torch::Tensor ak = tk_[i].sub(1).div(tk);
    tk_[i] = tk;
    param.copy_(x_next.mul(ak.add(1)).sub(x_prev_[i].mul(ak)));
    x_prev_[i] = x_next;
  }
}

OptimizerState Fista::state_dict() const {
  OptimizerState state;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!x_prev_[i].defined()) continue;
    state[state_key("fista.x_prev", i)] = x_prev_[i];
    state[state_key("fista.tk", i)] = tk_[i];
  }
  return state;
}

void Fista::load_state_dict(const OptimizerState& state) {
  for (size_t i = 0; i < params_.size(); ++i) {
    // Without x_{k-1} the parameter had no step yet.
    x_prev_[i] = load_state_tensor(state, state_key("fista.x_prev", i), params_[i], false);
    tk_[i] = x_prev_[i].defined() ? load_state_tensor(state, state_key("fista.tk", i),
                                                      torch::ones({1}, params_[i].options()), true)
                                  : torch::Tensor();
  }
}

}  // namespace fullbatch
