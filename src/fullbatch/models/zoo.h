#pragma once
// Internal to the model zoo: the per-family builders behind make_model, the hook that lets the
// initializer find residual branches without knowing their concrete types, and NFNet's own
// initialization and weight-standardized convolution.
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

// pyramidnet.cpp: model.width scales the stem (16 at 64) and alpha; below 4 it throws.
const std::vector<std::string>& pyramidnet_names();
ModelPtr build_pyramidnet(const ModelSpec& spec);

// How a family initializes its weights, as the reference's model code does:
//   ResNet (and the small CNN): convolutions Kaiming-normal fan_out, Linear torch's default;
//   DenseNet: convolutions Kaiming-normal fan_in, Linear weight torch's default, bias 0;
//   VGG ("classical init"): convolutions Kaiming-normal fan_out with bias 0, Linear N(0, 0.01),
//   bias 0;
//   PyramidNet: as ResNet (its reference normal_(0, sqrt(2 / (k * k * out))) is fan_out);
//   linear: torch's default Linear.
// BatchNorm is weight 1, bias 0 everywhere. NFNet cannot be expressed here: initialize_nfnet.
struct InitScheme {
  bool conv_fan_in = false;
  enum class Linear { kTorchDefault, kZeroBias, kNormal001ZeroBias } linear = Linear::kTorchDefault;
};
InitScheme init_scheme(const std::string& model_name);

// Every draw comes from `gen` in module registration order.
void initialize_weights(torch::nn::Module& model, const InitScheme& scheme, at::Generator gen);
void zero_init_residual(torch::nn::Module& model);

// linear_model.cpp: no width; it has the ordinary initialization (torch's default Linear).
const std::vector<std::string>& linear_names();
ModelPtr build_linear(const ModelSpec& spec);

// nfnet.cpp: model.width scales every channel count by width / 64; below 4 it throws. NFNet has
// its own initialization and its convolutions their own forward:
const std::vector<std::string>& nfnet_names();
ModelPtr build_nfnet(const ModelSpec& spec);

// NFNet's initialization, as the reference's nfnets.py does it: weight-standardized convolutions
// Xavier-normal with Conv2d's default bias U(+-1/sqrt(fan_in)) and gain 1; squeeze-excite Linears
// torch's default; the classifier N(0, 0.01) with the default bias; skip gains 0. Every draw comes
// from `gen` in module registration order.
void initialize_nfnet(torch::nn::Module& model, at::Generator gen);

// NFNet's scaled weight-standardized convolution, the forward of its every conv (exposed for its
// test): conv2d(x, (W - mean) * rsqrt(max(var * fan_in, 1e-4)) * gain, bias), with the mean and
// the unbiased variance taken per output channel over [in/groups, kh, kw] and fan_in their count.
torch::Tensor ws_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias, const torch::Tensor& gain, int64_t stride,
                        int64_t padding, int64_t groups);

}  // namespace fullbatch::detail
