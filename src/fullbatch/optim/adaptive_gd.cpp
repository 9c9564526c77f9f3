#include "fullbatch/optim/adaptive_gd.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "fullbatch/common/error.h"

namespace fullbatch {

AdaptiveGradientDescent::AdaptiveGradientDescent(std::vector<torch::Tensor> params,
                                                 AdaptiveGdOptions options,
                                                 std::vector<double> weight_decays)
    : sgd_(std::move(params), options.sgd, std::move(weight_decays)), options_(options) {
  expects(options_.interval >= 1, "AdaptiveGradientDescent: interval must be >= 1");
  expects(options_.norm_type > 0, "AdaptiveGradientDescent: norm_type must be > 0");
}

torch::Tensor AdaptiveGradientDescent::gradient_norm() const {
  std::vector<torch::Tensor> norms;
  for (const auto& p : sgd_.params()) {
    if (!p.grad().defined()) continue;
    norms.push_back(std::isinf(options_.norm_type) ? p.grad().abs().max()
                                                   : p.grad().norm(options_.norm_type));
  }
  if (norms.empty()) return torch::scalar_tensor(0.0);
  torch::Tensor all = torch::stack(norms);
  return std::isinf(options_.norm_type) ? all.max() : all.norm(options_.norm_type);
}

void AdaptiveGradientDescent::step(double lr, const GradientClosure& closure) {
  torch::Tensor norm;
  {
    torch::NoGradGuard no_grad;
    norm = gradient_norm();
  }
  const double value = norm.item<double>();
  const auto interval = static_cast<size_t>(options_.interval);
  if (norms_.empty()) norms_.push_back(value);
  if (norms_.size() < interval) {
    norms_.push_back(value);
    sgd_.step(lr);
    return;
  }
  const double recent_max = *std::max_element(norms_.end() - interval, norms_.end());
  if (value < recent_max) {
    norms_.push_back(value);
    norms_.erase(norms_.begin(), norms_.end() - interval);
    return;  // the reference takes no step here
  }
  {
    torch::NoGradGuard no_grad;
    // recent_max / (norm + 1e-6) in the gradient's dtype, then applied as a number.
    const double scale =
        torch::scalar_tensor(recent_max, norm.options()).div(norm.add(1e-6)).item<double>();
    for (const auto& p : sgd_.params()) p.mul_(scale);
  }
  sgd_.step(lr);
}

OptimizerState AdaptiveGradientDescent::state_dict() const {
  OptimizerState state = sgd_.state_dict();
  if (!norms_.empty())
    state["agd.norms"] = torch::tensor(norms_, torch::TensorOptions().dtype(torch::kFloat64));
  return state;
}

void AdaptiveGradientDescent::load_state_dict(const OptimizerState& state) {
  sgd_.load_state_dict(state);
  norms_.clear();
  auto it = state.find("agd.norms");
  if (it == state.end()) return;
  if (it->second.dim() != 1 || it->second.numel() > options_.interval)
    throw UserError(
        "checkpoint: optimizer state 'agd.norms' must be a vector of at most "
        "hyp.optim.interval numbers");
  torch::Tensor norms = it->second.to(torch::kCPU, torch::kFloat64).contiguous();
  norms_.assign(norms.data_ptr<double>(), norms.data_ptr<double>() + norms.numel());
}

}  // namespace fullbatch
