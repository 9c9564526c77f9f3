#pragma once
// hyp.optim.name "Adam": the reference builds torch.optim.AdamW from its adam.yaml, so this is
// AdamW, with decoupled weight decay, bias correction and optional AMSGrad, step for step as
// torch's single-tensor implementation computes it.
#include <torch/types.h>

#include <array>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

struct AdamWOptions {
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

// Per parameter with a gradient, at step k (counted per parameter, from 1):
//   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (AMSGrad: vmax = max(vmax,
//   v)) p -= lr / (1 - b1^k) * m / (sqrt(v or vmax) / sqrt(1 - b2^k) + eps).
// State: "adam.step.<i>", "adam.exp_avg.<i>", "adam.exp_avg_sq.<i>", "adam.max_exp_avg_sq.<i>".
class AdamW : public Optimizer {
 public:
  // weight_decays: one per parameter in place of options.weight_decay (empty: that one for all).
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options,
        std::vector<double> weight_decays = {});

  void step(double lr, const GradientClosure& closure) override;
  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;

 private:
  struct State {
    int64_t step = 0;  // 0: not started (no buffers)
    torch::Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
  };

  std::vector<torch::Tensor> params_;
  std::vector<double> weight_decays_;
  AdamWOptions options_;
  std::vector<State> state_;
};

}  // namespace fullbatch
