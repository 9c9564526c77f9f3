#pragma once
// The edge of stability of the optimizers that have one: the largest curvature lambda of a
// quadratic 0.5 lambda x^2 on which the optimizer's iteration at learning rate lr still
// converges. The report draws it beside the top Hessian eigenvalue recorded during training;
// docs/analysis.md derives each formula from the iteration's characteristic polynomial.
#include <optional>
#include <string>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

// lambda_max * lr for one optimizer setting (the threshold is `scale / lr`), with a label for
// plots, or no scale and the reason why there is none.
struct StabilityLimit {
  std::optional<double> scale;  // lambda_max = scale / lr
  std::string label;            // e.g. "(2+2m)/((1+2m) lr), Nesterov m=0.9"
  std::string reason;           // why there is no limit (scale empty)
};

// Gradient Descent (the only optimizer whose step is linear in the gradient with a fixed lr):
//   momentum 0:                      2 / lr
//   heavy ball (nesterov off):       2 (1 + m) / ((1 - d) lr)             d the dampening
//   Nesterov (d = g + m buf):        2 (1 + m) / ((1 + m + m (1 - d)) lr)
//                                    = (2 + 2m) / ((1 + 2m) lr) at d = 0 (Sgd refuses d != 0)
// Every other optimizer and every modification (SAM, LARS, LARC) has none: their step depends on
// the gradient's history or size (Adam, L-BFGS, FISTA, GD-AGC, Adaptive GD) or on more than the
// gradient at theta, so no single curvature separates convergence from divergence. Weight decay
// wd adds wd to every curvature the iteration sees, which the caller subtracts when the measured
// objective leaves it out. The momentum buffer's first step (buf = d, undamped) is a transient
// and does not move the limit.
StabilityLimit stability_limit(const OptimizerSettings& settings);

}  // namespace fullbatch
