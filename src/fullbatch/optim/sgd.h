#pragma once
// The optimizer: SGD with momentum, Nesterov and weight decay, written out so its state is
// explicit (a checkpoint holds exactly the momentum buffers) and its update order is the
// reference's.
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

namespace fullbatch {

struct SgdOptions {
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = true;
};

// SGD with torch.optim.SGD's semantics (dampening 0): d = g + wd * p; buf = momentum * buf + d
// (buf = d on the first step); d = d + momentum * buf if Nesterov else buf; p -= lr * d.
// Weight decay is added here, after clipping, so it is never clipped.
class Sgd {
 public:
  Sgd(std::vector<torch::Tensor> params, SgdOptions options);

  // Uses each parameter's .grad(); a parameter without a gradient is skipped.
  void step(double lr);

  // The state a checkpoint must hold: the momentum buffers (undefined until the first step).
  std::map<std::string, torch::Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);

  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> momentum_;
  SgdOptions options_;
};

}  // namespace fullbatch
