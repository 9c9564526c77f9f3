#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"
#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/models/model.h"
#include "fullbatch/models/torchscript.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch {
namespace detail {
namespace {

void initialize_linear(torch::nn::LinearImpl& linear, InitScheme::Linear kind, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(linear.weight.size(1)));
  if (kind == InitScheme::Linear::kNormal001ZeroBias) {
    linear.weight.normal_(0.0, 0.01, gen);
  } else {
    linear.weight.uniform_(-bound, bound, gen);
  }
  if (!linear.bias.defined()) return;
  if (kind == InitScheme::Linear::kTorchDefault) {
    linear.bias.uniform_(-bound, bound, gen);
  } else {
    linear.bias.zero_();
  }
}

}  // namespace

InitScheme init_scheme(const std::string& model_name) {
  auto in = [&](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), model_name) != names.end();
  };
  if (in(densenet_names())) return {true, InitScheme::Linear::kZeroBias};
  if (in(vgg_names())) return {false, InitScheme::Linear::kNormal001ZeroBias};
  return {false, InitScheme::Linear::kTorchDefault};
}

// A BatchNorm's affine parameters start as the identity (weight 1, bias 0), as libtorch's do.
void reset_affine(const torch::Tensor& weight, const torch::Tensor& bias) {
  if (weight.defined()) weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

void initialize_weights(torch::nn::Module& model, const InitScheme& scheme, at::Generator gen) {
  torch::NoGradGuard no_grad;
  for (const auto& module : model.modules(/*include_self=*/true)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      const auto& w = conv->weight;  // [out, in/groups, kh, kw]
      const int64_t fan = (scheme.conv_fan_in ? w.size(1) : w.size(0)) * w.size(2) * w.size(3);
      w.normal_(0.0, std::sqrt(2.0 / static_cast<double>(fan)), gen);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* bn = module->as<BlockBatchNorm2d>()) {
      reset_affine(bn->weight, bn->bias);
    } else if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      reset_affine(bn->weight, bn->bias);
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      initialize_linear(*linear, scheme.linear, gen);
    }
  }
}

void zero_init_residual(torch::nn::Module& model) {
  for (const auto& module : model.modules(/*include_self=*/true)) {
    if (auto* branch = dynamic_cast<ResidualBranch*>(module.get())) branch->zero_last_bn();
  }
}

}  // namespace detail

namespace {

// Far above anything trainable, low enough that width * 2^stages * 4 cannot overflow.
constexpr int64_t kMaxWidth = int64_t{1} << 16;
constexpr int64_t kMaxChannels = int64_t{1} << 16;

// A family of models: the names it builds and its builder (models/zoo.h).
struct Family {
  const std::vector<std::string>& (*names)();
  ModelPtr (*build)(const ModelSpec& spec);
};

// Every family, in the order model_names() lists them.
const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      {detail::resnet_names, detail::build_resnet},
      {detail::vgg_names, detail::build_vgg},
      {detail::densenet_names, detail::build_densenet},
      {detail::simple_names, detail::build_simple},
      {detail::pyramidnet_names, detail::build_pyramidnet},
      {detail::nfnet_names, detail::build_nfnet},
      {detail::linear_names, detail::build_linear},
      {detail::torchscript_names, detail::build_torchscript},
  };
  return all;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_range(const char* key, int64_t value, int64_t max) {
  if (value < 1 || value > max) {
    throw UserError(std::string(key) + " must be in [1, " + std::to_string(max) + "], got " +
                    std::to_string(value));
  }
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const Family& family : families()) {
    names.insert(names.end(), family.names().begin(), family.names().end());
  }
  return names;
}

void check_model_name(const std::string& name) {
  const std::vector<std::string> names = model_names();
  if (!contains(names, name))
    throw UserError("config key 'model.name': bad value '" + name +
                    "': must be one of: " + join(names));
}

bool channels_last_is_faster_on_cpu(const ModelSpec& spec) {
  constexpr int64_t kNarrowestMeasuredFaster = 8;
  return contains(detail::resnet_names(), spec.name) && spec.width >= kNarrowestMeasuredFaster;
}

ModelPtr make_model(const ModelSpec& spec, uint64_t init_seed) {
  check_range("model.width", spec.width, kMaxWidth);
  check_range("model.in_channels", spec.in_channels, kMaxChannels);
  check_range("model.num_classes", spec.num_classes, kMaxChannels);
  check_model_name(spec.name);
  ModelPtr model;
  for (const Family& family : families()) {
    if (contains(family.names(), spec.name)) model = family.build(spec);
  }
  // The user's module starts from its file's weights; to start it elsewhere, save it so
  // (scripts/script_model.py --seed).
  if (spec.name == kTorchScriptModelName) return model;
  at::Generator gen = keyed_generator(init_seed, Stream::kInit, {});
  if (contains(detail::nfnet_names(), spec.name)) {
    detail::initialize_nfnet(*model, gen);
  } else {
    detail::initialize_weights(*model, detail::init_scheme(spec.name), gen);
  }
  if (spec.zero_init_residual) detail::zero_init_residual(*model);
  return model;
}

int64_t count_parameters(const torch::nn::Module& model) {
  int64_t total = 0;
  for (const auto& p : model.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

}  // namespace fullbatch
