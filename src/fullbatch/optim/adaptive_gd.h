#pragma once
// hyp.optim.name "Adaptive Gradient Descent": the reference's adaptive_clipping.py, SGD that
// compares each step's gradient norm with the largest of the last `interval` norms. Its docstring
// promises gradient clipping; its code does something else, which is what runs there and here:
//   - the first norm is recorded twice, and while fewer than `interval` norms are recorded each
//     step records its norm and takes an ordinary SGD step;
//   - then a norm below the recent maximum is recorded and NO step is taken;
//   - a norm at or above it is not recorded, the PARAMETERS (not the gradient) are multiplied by
//     recent_max / (norm + 1e-6), and an SGD step with the unscaled gradient follows.
// The reference's author warns it is "often a bad idea"; it is here so its configs run.
#include <torch/types.h>

#include <vector>

#include "fullbatch/optim/optimizer.h"
#include "fullbatch/optim/sgd.h"

namespace fullbatch {

struct AdaptiveGdOptions {
  SgdOptions sgd;
  int64_t interval = 10;
  double norm_type = 2.0;  // of the whole gradient: 2, another p > 0, or inf (max |g|)
};

// State: Sgd's "momentum.<i>" and "agd.norms" (the recorded norms that still matter, oldest
// first, as a float64 vector; they are values of the gradient's dtype).
class AdaptiveGradientDescent : public Optimizer {
 public:
  AdaptiveGradientDescent(std::vector<torch::Tensor> params, AdaptiveGdOptions options,
                          std::vector<double> weight_decays = {});

  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;
  void step(double lr, const GradientClosure& closure) override;

 private:
  // The gradient's norm as the reference computes it: the norm of the per-tensor norms, in the
  // gradient's dtype (0-dim tensor).
  torch::Tensor gradient_norm() const;

  Sgd sgd_;
  AdaptiveGdOptions options_;
  std::vector<double> norms_;  // at most `interval` entries: older ones never matter again
};

}  // namespace fullbatch
