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

// Kaiming-normal (fan_out, relu) for convolutions, BN weight 1 bias 0, PyTorch's default uniform
// for Linear; every draw comes from `gen` in module registration order.
void initialize_weights(torch::nn::Module& model, at::Generator gen);
void zero_init_residual(torch::nn::Module& model);

}  // namespace fullbatch::detail
