#include "fullbatch/optim/lars.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"

namespace fullbatch {

Lars::Lars(std::unique_ptr<Optimizer> base, std::vector<torch::Tensor> params,
           std::vector<double> weight_decays, LarsOptions options)
    : OptimizerModification(std::move(base), std::move(params)),
      weight_decays_(per_parameter(std::move(weight_decays), params_.size(), 0.0)),
      options_(options) {
  expects(options_.trust_coefficient > 0, "Lars: trust_coefficient must be > 0");
  expects(options_.eps >= 0, "Lars: eps must be >= 0");
}

void Lars::step(double lr, const GradientClosure& closure) {
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      const torch::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      torch::Tensor g = p.grad();
      const double wd = weight_decays_[i];
      const torch::Tensor param_norm = p.norm(2);
      const torch::Tensor grad_norm = g.norm(2);
      // The reference's operations in its order, in the parameter's dtype; no host sync: the
      // zero-norm case is a mask.
      torch::Tensor ratio = param_norm.mul(options_.trust_coefficient)
                                .div(grad_norm.add(param_norm.mul(wd)).add(options_.eps));
      if (options_.clip) ratio = ratio.div(lr).clamp_max(1.0);  // lr 0 (warm-up): ratio 1
      const torch::Tensor scaled = g.add(p.mul(wd)).mul(ratio);
      const torch::Tensor apply = param_norm.ne(0).logical_and(grad_norm.ne(0));
      g.copy_(torch::where(apply, scaled, g));
    }
  }
  base_->step(lr, closure);
}

}  // namespace fullbatch
