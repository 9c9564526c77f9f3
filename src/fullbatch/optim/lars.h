#pragma once
// hyp.optim_modification.name "LARS" and "LARC": layer-wise adaptive rate scaling (You et al.
// 2017) around any base optimizer, as the reference's lars.py (apex's LARC): each parameter's
// gradient is rescaled by a trust ratio of its weight and gradient norms before the base steps.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

struct LarsOptions {
  double trust_coefficient = 0.02;
  double eps = 1e-8;
  bool clip = false;  // LARC
};

// Per parameter with a gradient, when both |p| and |g| (l2) are nonzero:
//   ratio = trust_coefficient |p| / (|g| + wd |p| + eps);  LARC: ratio = min(ratio / lr, 1)
//   (so the effective rate is min(lr * ratio_LARS, lr));  g = (g + wd p) * ratio, in .grad().
// A parameter with |p| = 0 or |g| = 0 keeps its gradient, without weight decay. The weight decay is
// taken from the base (make_optimizer builds the base without it), as lars.py zeroes the groups'
// weight_decay around the base's step; a base without weight decay (FISTA) gives wd 0.
// No state of its own: state_dict() is the base's.
class Lars : public OptimizerModification {
 public:
  // weight_decays: one per parameter (empty: none).
  Lars(std::unique_ptr<Optimizer> base, std::vector<torch::Tensor> params,
       std::vector<double> weight_decays, LarsOptions options);

  void step(double lr, const GradientClosure& closure) override;

 private:
  std::vector<double> weight_decays_;
  LarsOptions options_;
};

}  // namespace fullbatch
