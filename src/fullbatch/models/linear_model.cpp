// The reference's debugging model "linear": flatten the image, keep its first 100 values and map
// them to the logits with one Linear layer. It has no width; model.width and model.in_channels
// are ignored.
#include <torch/torch.h>

#include "fullbatch/common/error.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

// The reference selects the first 100 flattened values (x[:, :100]), whatever the image size.
constexpr int64_t kFeatures = 100;

// The reference builds Sequential(Flatten, Select(100), Linear(100, classes)); only the Linear has
// state, so it is registered under the reference's index, "2" (state dict keys 2.weight, 2.bias).
class LinearModel : public Classifier {
 public:
  explicit LinearModel(const ModelSpec& spec) {
    fc = register_module("2", torch::nn::Linear(kFeatures, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    const auto flat = x.flatten(1);
    if (flat.size(1) < kFeatures) {
      throw UserError("model.name 'linear' needs at least " + std::to_string(kFeatures) +
                      " input values per example, got " + std::to_string(flat.size(1)));
    }
    return fc(flat.narrow(1, 0, kFeatures));
  }

 private:
  torch::nn::Linear fc{nullptr};
};

}  // namespace

ModelPtr build_linear(const ModelSpec& spec) {
  return std::make_shared<LinearModel>(spec);
}

const std::vector<std::string>& linear_names() {
  static const std::vector<std::string> names = {"linear"};
  return names;
}

}  // namespace fullbatch::detail
