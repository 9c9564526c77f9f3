#pragma once
// The optimizer: SGD with momentum, Nesterov and weight decay, written out so its state is
// explicit (a checkpoint holds exactly the momentum buffers) and its update order is the
// reference's. It is hyp.optim.name "Gradient Descent", and the update GD-AGC and Adaptive
// Gradient Descent apply after their own changes.
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

struct SgdOptions {
  double momentum = 0.9;  // in [0, 1]: hyp.optim.momentum checks it, Sgd asserts it
  double weight_decay = 5e-4;
  bool nesterov = true;
  double dampening = 0.0;
};

// SGD with torch.optim.SGD's semantics: d = g + wd * p; buf = momentum * buf + (1 - dampening) * d
// (buf = d on the first step); d = d + momentum * buf if Nesterov else buf; p -= lr * d.
// Weight decay is added here, after clipping, so it is never clipped. Nesterov needs dampening 0
// (as torch); with momentum 0 there is no buffer and Nesterov has no effect.
class Sgd : public Optimizer {
 public:
  // weight_decays: one per parameter in place of options.weight_decay (empty: that one for all).
  Sgd(std::vector<torch::Tensor> params, SgdOptions options,
      std::vector<double> weight_decays = {});

  // Uses each parameter's .grad(); a parameter without a gradient is skipped.
  void step(double lr);
  void step(double lr, const GradientClosure& closure) override { step(lr); }
  // The same update with `directions[i]` in place of parameter i's .grad() (GD-AGC clips the
  // gradient first without touching .grad()); an undefined direction skips its parameter.
  void step_with(double lr, const std::vector<torch::Tensor>& directions);

  // The state a checkpoint must hold: the momentum buffers "momentum.<i>" (undefined until the
  // first step).
  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;

  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  void update(size_t i, double lr, const torch::Tensor& grad);

  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> momentum_;
  std::vector<double> weight_decays_;
  SgdOptions options_;
};

}  // namespace fullbatch
