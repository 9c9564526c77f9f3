#pragma once
// Internal to the model zoo: the per-family builders behind make_model, and the hook that lets the
// initializer find residual branches without knowing their concrete types.
#include <string>
#include <vector>

#include "fullbatch/models/model.h"

namespace fullbatch::detail {

// Implemented by residual blocks; zero_init_residual calls it after the ordinary initialization so
// each block starts as the identity map (plus its shortcut).
class ResidualBranch {
 public:
  virtual ~ResidualBranch() = default;
  virtual void zero_last_bn() = 0;
};

// Each family lists its names and builds one of them. The builders assume make_model has already
// checked the name and the common fields; they throw UserError for family-specific limits.
const std::vector<std::string>& resnet_names();
ModelPtr build_resnet(const ModelSpec& spec);

const std::vector<std::string>& vgg_names();
ModelPtr build_vgg(const ModelSpec& spec);

const std::vector<std::string>& densenet_names();
ModelPtr build_densenet(const ModelSpec& spec);

const std::vector<std::string>& simple_names();
ModelPtr build_simple(const ModelSpec& spec);

// How a family initializes its weights, as the reference's model code does:
//   ResNet (and the small CNN): convolutions Kaiming-normal fan_out, Linear torch's default;
//   DenseNet: convolutions Kaiming-normal fan_in, Linear weight torch's default, bias 0;
//   VGG ("classical init"): convolutions Kaiming-normal fan_out with bias 0, Linear N(0, 0.01),
//   bias 0.
// BatchNorm is weight 1, bias 0 everywhere.
struct InitScheme {
  bool conv_fan_in = false;
  enum class Linear { kTorchDefault, kZeroBias, kNormal001ZeroBias } linear = Linear::kTorchDefault;
};
InitScheme init_scheme(const std::string& model_name);

// Every draw comes from `gen` in module registration order.
void initialize_weights(torch::nn::Module& model, const InitScheme& scheme, at::Generator gen);
void zero_init_residual(torch::nn::Module& model);

}  // namespace fullbatch::detail
