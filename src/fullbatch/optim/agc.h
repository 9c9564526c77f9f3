#pragma once
// hyp.optim.name "GD-AGC": SGD after unit-wise adaptive gradient clipping (Brock et al. 2021,
// NFNets), as the reference's sgd_agc.py (after nfnets_pytorch): each unit's gradient (a row of a
// linear layer, an output channel of a convolution) is clipped to `clipping` times the norm of the
// same unit of the weights, at least eps.
#include <torch/types.h>

#include <vector>

#include "fullbatch/optim/optimizer.h"
#include "fullbatch/optim/sgd.h"

namespace fullbatch {

struct AgcOptions {
  SgdOptions sgd;
  double clipping = 0.01;
  double eps = 1e-3;
};

// The reference's unitwise_norm: a tensor that squeezes to at most one dimension (scalar, bias,
// gain) has one norm over dimension 0; 2-D and 3-D tensors one per slice along dimension 0
// (norm over dim 1, kept); 4-D (convolutions, OIHW) one per output channel (norm over 1, 2, 3,
// kept). Other ranks: UserError.
torch::Tensor unitwise_norm(const torch::Tensor& x);

// g' = g * max_norm / max(|g|_unit, 1e-6) where |g|_unit > max_norm = clipping * max(|p|_unit,
// eps), else g; both thresholds are float32 numbers as the reference's torch.tensor(eps) is.
torch::Tensor agc_clip(const torch::Tensor& param, const torch::Tensor& grad, double clipping,
                       double eps);

// Clips each clipped parameter's gradient (without changing .grad()), then the Sgd update: weight
// decay is added after clipping, so never clipped. State: Sgd's "momentum.<i>".
class SgdAgc : public Optimizer {
 public:
  // clipped: per parameter, false for the unclipped layer (make_optimizer: names starting with
  // agc_unclipped_prefixes). weight_decays as Sgd's.
  SgdAgc(std::vector<torch::Tensor> params, AgcOptions options, std::vector<bool> clipped,
         std::vector<double> weight_decays = {});

  void step(double lr, const GradientClosure& closure) override;
  OptimizerState state_dict() const override { return sgd_.state_dict(); }
  void load_state_dict(const OptimizerState& state) override { sgd_.load_state_dict(state); }

 private:
  Sgd sgd_;
  AgcOptions options_;
  std::vector<bool> clipped_;
};

}  // namespace fullbatch
