#pragma once
// hyp.optim.name "FISTA": the reference's fista.py, a gradient step followed by Nesterov's
// over-relaxation with an explicit momentum sequence, FISTA-mod's (p, q, r) variant (Liang,
// Luo and Schoenlieb 2018). No projection (the reference's config leaves it empty), no weight
// decay (its FISTA has none).
#include <torch/types.h>

#include <array>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

struct FistaOptions {
  std::array<double, 3> fista_mod = {1.0, 1.0, 4.0};  // (p, q, r)
};

// Per parameter with a gradient (the parameter holds y_k; x_{k-1} and t_k start as the first
// y and 1):
//   x_k = y_k - lr g(y_k);  t_{k+1} = (p + sqrt(q + r t_k^2)) / 2;  a = (t_k - 1) / t_{k+1};
//   y_{k+1} = (1 + a) x_k - a x_{k-1}.
// t is a one-element tensor in the parameter's dtype, as the reference keeps it.
// State: "fista.x_prev.<i>" (x_{k-1}), "fista.tk.<i>".
class Fista : public Optimizer {
 public:
  Fista(std::vector<torch::Tensor> params, FistaOptions options);

  void step(double lr, const GradientClosure& closure) override;
  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;

 private:
  std::vector<torch::Tensor> params_;
  FistaOptions options_;
  std::vector<torch::Tensor> x_prev_, tk_;
};

}  // namespace fullbatch
