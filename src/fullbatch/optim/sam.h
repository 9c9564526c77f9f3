#pragma once
// hyp.optim_modification.name "SAM": sharpness-aware minimization (Foret et al. 2021) around any
// base optimizer, as the reference's sam.py (after davda54/sam): step to the worst point within
// rho along the gradient, take the gradient there, come back and let the base step with it.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

// step(lr, closure), with g in .grad() (the trainer's evaluation at w, the reference's first
// closure call):
//   e = g * rho / (||g|| + 1e-12), ||g|| the l2 norm of the per-tensor l2 norms;  w += e;
//   closure() (the whole gradient evaluation again: regularizer, clipping and noise included);
//   w -= e (a subtraction, as the reference: not bit-exact);  base.step(lr) with that gradient.
// No state of its own: state_dict() is the base's.
class Sam : public OptimizerModification {
 public:
  Sam(std::unique_ptr<Optimizer> base, std::vector<torch::Tensor> params, double rho);

  void step(double lr, const GradientClosure& closure) override;
  bool needs_closure() const override { return true; }

 private:
  double rho_;
};

}  // namespace fullbatch
