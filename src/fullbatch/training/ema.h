#pragma once
// An exponential moving average of the weights and BatchNorm buffers (hyp.evaluate_ema), which
// evaluation uses in place of the live weights. Its state is declared here, beside the class
// that owns it, so a checkpoint cannot forget it.
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

namespace fullbatch {

class WeightAverage {
 public:
  // Starts at the model's current parameters and buffers.
  WeightAverage(torch::nn::Module& model, double momentum);

  // avg = m * avg + (1 - m) * live for parameters and every buffer (integer ones truncated), as
  // the reference: after every full-batch step, or once per SGD epoch.
  void update();

  // Puts the average into the model until destroyed, then the live weights back, bit for bit.
  class Swap {
   public:
    explicit Swap(WeightAverage& average);
    ~Swap();
    Swap(const Swap&) = delete;
    Swap& operator=(const Swap&) = delete;

   private:
    WeightAverage& average_;
    std::vector<torch::Tensor> live_;
  };

  // The state a checkpoint must hold: "ema.0", "ema.1", ... (parameters, then buffers).
  std::map<std::string, torch::Tensor> state_dict() const;
  // Throws UserError naming a missing entry.
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);

 private:
  std::vector<torch::Tensor> targets() const;  // the model's parameters, then its buffers

  torch::nn::Module& model_;
  double momentum_;
  std::vector<torch::Tensor> average_;
};

}  // namespace fullbatch
