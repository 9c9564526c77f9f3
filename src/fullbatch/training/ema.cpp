#include "fullbatch/training/ema.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"

namespace fullbatch {

WeightAverage::WeightAverage(torch::nn::Module& model, double momentum)
    : model_(model), momentum_(momentum) {
  for (const auto& t : targets()) average_.push_back(t.detach().clone());
}

std::vector<torch::Tensor> WeightAverage::targets() const {
  std::vector<torch::Tensor> all = model_.parameters();
  for (const auto& b : model_.buffers()) all.push_back(b);
  return all;
}

void WeightAverage::update() {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> live = targets();
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].is_floating_point()) {
      average_[i].copy_(momentum_ * average_[i] + (1.0 - momentum_) * live[i].detach());
    } else {
      // As the reference: integer buffers (BatchNorm's batch counter) are averaged in floating
      // point and truncated back.
      average_[i].copy_(momentum_ * average_[i].to(torch::kFloat32) +
                        (1.0 - momentum_) * live[i].to(torch::kFloat32));
    }
  }
}

WeightAverage::Swap::Swap(WeightAverage& average) : average_(average) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> targets = average_.targets();
  for (size_t i = 0; i < targets.size(); ++i) {
    live_.push_back(targets[i].detach().clone());
    targets[i].detach().copy_(average_.average_[i]);
  }
}

WeightAverage::Swap::~Swap() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> targets = average_.targets();
  for (size_t i = 0; i < targets.size(); ++i) targets[i].detach().copy_(live_[i]);
}

std::map<std::string, torch::Tensor> WeightAverage::state_dict() const {
  std::map<std::string, torch::Tensor> state;
  for (size_t i = 0; i < average_.size(); ++i) state["ema." + std::to_string(i)] = average_[i];
  return state;
}

void WeightAverage::load_state_dict(const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < average_.size(); ++i) {
    const std::string key = "ema." + std::to_string(i);
    auto it = state.find(key);
    if (it == state.end()) throw UserError("checkpoint: missing entry '" + key + "'");
    average_[i].copy_(it->second);
  }
}

}  // namespace fullbatch
