#include "fullbatch/optim/sam.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"

namespace fullbatch {

Sam::Sam(std::unique_ptr<Optimizer> base, std::vector<torch::Tensor> params, double rho)
    : OptimizerModification(std::move(base), std::move(params)), rho_(rho) {
  expects(rho_ >= 0, "Sam: rho must be >= 0");
}

void Sam::step(double lr, const GradientClosure& closure) {
  std::vector<torch::Tensor> e_w(params_.size());
  {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> norms;
    for (const auto& p : params_)
      if (p.grad().defined()) norms.push_back(p.grad().norm(2));
    if (!norms.empty()) {
      // rho / (norm + 1e-12) as Python computes a number over a tensor: reciprocal, then times.
      const torch::Tensor scale = torch::stack(norms).norm(2).add(1e-12).reciprocal().mul(rho_);
      for (size_t i = 0; i < params_.size(); ++i) {
        if (!params_[i].grad().defined()) continue;
        e_w[i] = params_[i].grad().mul(scale.to(params_[i].options()));
        params_[i].add_(e_w[i]);  // climb to w + e(w)
      }
    }
  }
  call_closure(closure);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i)
      if (e_w[i].defined()) params_[i].sub_(e_w[i]);  // back to w
  }
  base_->step(lr, closure);
}

}  // namespace fullbatch
