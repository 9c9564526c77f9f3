#include <torch/torch.h>

#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

// A small CNN without BatchNorm: its block gradients are independent of how a batch is split,
// which makes it the model of the exact accumulation tests, and it trains in seconds on a CPU.
class SimpleCnn : public Classifier {
 public:
  explicit SimpleCnn(const ModelSpec& s) {
    auto conv = [](int64_t in, int64_t out, int64_t stride) {
      return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
    };
    conv1 = register_module("conv1", conv(s.in_channels, s.width, 1));
    conv2 = register_module("conv2", conv(s.width, 2 * s.width, 2));
    conv3 = register_module("conv3", conv(2 * s.width, 4 * s.width, 2));
    fc = register_module("fc", torch::nn::Linear(4 * s.width, s.num_classes));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor h = torch::relu(conv1->forward(x));
    h = torch::relu(conv2->forward(h));
    h = torch::relu(conv3->forward(h));
    return fc->forward(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::Linear fc{nullptr};
};

}  // namespace

const std::vector<std::string>& simple_names() {
  static const std::vector<std::string> names = {"simplecnn"};
  return names;
}

ModelPtr build_simple(const ModelSpec& spec) { return std::make_shared<SimpleCnn>(spec); }

}  // namespace fullbatch::detail
