#include "fullbatch/optim/agc.h"

#include <torch/torch.h>

#include <sstream>

#include "fullbatch/common/error.h"

namespace fullbatch {

torch::Tensor unitwise_norm(const torch::Tensor& x) {
  torch::Tensor squares = x.square();
  if (x.squeeze().dim() <= 1) return squares.sum(std::vector<int64_t>{0}, false).sqrt();
  if (x.dim() == 2 || x.dim() == 3) return squares.sum(std::vector<int64_t>{1}, true).sqrt();
  if (x.dim() == 4) return squares.sum(std::vector<int64_t>{1, 2, 3}, true).sqrt();
  std::ostringstream out;
  out << "GD-AGC: no unit-wise norm for a parameter of shape " << x.sizes()
      << " (1 to 4 dimensions)";
  throw UserError(out.str());
}

torch::Tensor agc_clip(const torch::Tensor& param, const torch::Tensor& grad, double clipping,
                       double eps) {
  const double eps32 = static_cast<float>(eps);
  const double floor32 = static_cast<float>(1e-6);
  torch::Tensor param_norm = unitwise_norm(param).clamp_min(eps32);
  torch::Tensor grad_norm = unitwise_norm(grad);
  torch::Tensor max_norm = param_norm.mul(clipping);
  torch::Tensor clipped = grad.mul(max_norm.div(grad_norm.clamp_min(floor32)));
  return torch::where(grad_norm.gt(max_norm), clipped, grad);
}

SgdAgc::SgdAgc(std::vector<torch::Tensor> params, AgcOptions options, std::vector<bool> clipped,
               std::vector<double> weight_decays)
    : sgd_(std::move(params), options.sgd, std::move(weight_decays)),
      options_(options),
      clipped_(std::move(clipped)) {
  expects(options_.clipping > 0, "SgdAgc: clipping must be > 0");
  expects(options_.eps >= 0, "SgdAgc: eps must be >= 0");
  if (clipped_.empty()) clipped_.assign(sgd_.params().size(), true);
  if (clipped_.size() != sgd_.params().size())
    throw std::invalid_argument("SgdAgc: one clipping flag per parameter expected");
}

void SgdAgc::step(double lr, const GradientClosure& closure) {
  std::vector<torch::Tensor> directions;
  {
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor>& params = sgd_.params();
    for (size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor& g = params[i].grad();
      directions.push_back(g.defined() && clipped_[i]
                               ? agc_clip(params[i].detach(), g, options_.clipping, options_.eps)
                               : g);
    }
  }
  sgd_.step_with(lr, directions);
}

}  // namespace fullbatch
