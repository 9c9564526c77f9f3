#include <torch/torch.h>

#include <map>

#include "fullbatch/common/error.h"
#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

namespace nn = torch::nn;

// ---- VGG with BatchNorm ----------------------------------------------------------------------

constexpr int64_t kPool = 0;  // marks a max-pool in a VGG configuration

const std::map<std::string, std::vector<int64_t>>& vgg_table() {
  // Simonyan & Zisserman's configurations A, B, D, E at width 64.
  static const std::map<std::string, std::vector<int64_t>> table = {
      {"vgg11", {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {"vgg13",
       {64, 64, kPool, 128, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {"vgg16",
       {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512, 512,
        kPool}},
      {"vgg19", {64,  64,  kPool, 128, 128,   kPool, 256, 256, 256, 256,  kPool,
                 512, 512, 512,   512, kPool, 512,   512, 512, 512, kPool}},
  };
  return table;
}

// On 32x32 input the five pools leave a 1x1 map, so the classifier is a single Linear on the
// channels. ceil_mode lets 28x28 input reach 1x1 too (28-14-7-4-2-1) instead of collapsing to
// 0x0; on 32x32 every pool sees an even size and ceil_mode changes nothing.
class VGG : public Classifier {
 public:
  VGG(const std::vector<int64_t>& config, const ModelSpec& spec) {
    nn::Sequential layers;
    int64_t in = spec.in_channels;
    for (int64_t c : config) {
      if (c == kPool) {
        layers->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2).ceil_mode(true)));
        continue;
      }
      const int64_t out = c * spec.width / 64;
      // The conv keeps its bias although BN follows: the usual VGG-BN definition does, and its
      // parameter count (14,728,266 for VGG-16 on CIFAR-10) is what results get compared by.
      layers->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)));
      layers->push_back(BlockBatchNorm2d(out));
      layers->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
      in = out;
    }
    features = register_module("features", layers);
    classifier = register_module("classifier", nn::Linear(in, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = features->forward(x);
    out = torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
    return classifier(out);
  }

 private:
  nn::Sequential features{nullptr};
  nn::Linear classifier{nullptr};
};

// ---- DenseNet --------------------------------------------------------------------------------

// BN-ReLU-conv1x1 (to bn_size * growth) - BN-ReLU-conv3x3 (to growth); the layer returns its input
// with the new features appended.
class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int64_t in, int64_t growth, int64_t bn_size)
      : norm1(register_module("norm1", BlockBatchNorm2d(in))),
        conv1(register_module("conv1",
                              nn::Conv2d(nn::Conv2dOptions(in, bn_size * growth, 1).bias(false)))),
        norm2(register_module("norm2", BlockBatchNorm2d(bn_size * growth))),
        conv2(register_module(
            "conv2",
            nn::Conv2d(nn::Conv2dOptions(bn_size * growth, growth, 3).padding(1).bias(false)))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = conv1(norm1(x).relu_());
    out = conv2(norm2(out).relu_());
    return torch::cat(std::vector<torch::Tensor>{x, out}, 1);
  }

  BlockBatchNorm2d norm1;
  nn::Conv2d conv1;
  BlockBatchNorm2d norm2;
  nn::Conv2d conv2;
};
TORCH_MODULE(DenseLayer);

// Its own module rather than a Sequential because a Sequential cannot be nested in another one.
class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int64_t layers, int64_t in, int64_t growth, int64_t bn_size) {
    for (int64_t l = 0; l < layers; ++l) {
      layers_.push_back(register_module("denselayer" + std::to_string(l + 1),
                                        DenseLayer(in + l * growth, growth, bn_size)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = x;
    for (auto& layer : layers_) out = layer(out);
    return out;
  }

 private:
  std::vector<DenseLayer> layers_;
};
TORCH_MODULE(DenseBlock);

class TransitionImpl : public nn::Module {
 public:
  TransitionImpl(int64_t in, int64_t out)
      : norm(register_module("norm", BlockBatchNorm2d(in))),
        conv(register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return torch::avg_pool2d(conv(norm(x).relu_()), {2, 2}, {2, 2});
  }

  BlockBatchNorm2d norm;
  nn::Conv2d conv;
};
TORCH_MODULE(Transition);

struct DenseNetConfig {
  std::vector<int64_t> blocks;
  int64_t growth_at_64;    // growth rate at model.width 64
  int64_t features_at_64;  // initial features (conv0's channels) at model.width 64
  int64_t bn_size;
};

const std::map<std::string, DenseNetConfig>& densenet_table() {
  static const std::map<std::string, DenseNetConfig> table = {
      // The reference's densenet_depths_to_config (torchvision's configurations).
      {"densenet121", {{6, 12, 24, 16}, 32, 64, 4}},
      {"densenet161", {{6, 12, 36, 24}, 48, 96, 4}},
      {"densenet169", {{6, 12, 32, 32}, 32, 64, 4}},
      {"densenet201", {{6, 12, 48, 32}, 32, 64, 4}},
  };
  return table;
}

// torchvision's layout and names (features.conv0, features.denseblock1.denselayer1.norm1, ...,
// features.norm5, classifier) with the reference's CIFAR stem: conv0, a stride-1 3x3 conv, alone
// (no norm0, relu0 or max-pool; the first dense layer's norm1 is the first normalization).
// model.width scales the initial features and the growth rate by width / 64 (so for 121, 169 and
// 201 it is the number of initial features; 161 has 96 and growth 48 at width 64).
class DenseNet : public Classifier {
 public:
  DenseNet(const DenseNetConfig& config, const ModelSpec& spec, int64_t growth) {
    nn::Sequential layers;
    int64_t channels = config.features_at_64 * spec.width / 64;
    layers->push_back(
        "conv0",
        nn::Conv2d(nn::Conv2dOptions(spec.in_channels, channels, 3).padding(1).bias(false)));
    for (size_t i = 0; i < config.blocks.size(); ++i) {
      layers->push_back("denseblock" + std::to_string(i + 1),
                        DenseBlock(config.blocks[i], channels, growth, config.bn_size));
      channels += config.blocks[i] * growth;
      if (i + 1 < config.blocks.size()) {
        const int64_t out = channels / 2;  // compression 0.5
        layers->push_back("transition" + std::to_string(i + 1), Transition(channels, out));
        channels = out;
      }
    }
    layers->push_back("norm5", BlockBatchNorm2d(channels));
    features = register_module("features", layers);
    classifier = register_module("classifier", nn::Linear(channels, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = features->forward(x).relu_();
    out = torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
    return classifier(out);
  }

 private:
  nn::Sequential features{nullptr};
  nn::Linear classifier{nullptr};
};

std::vector<std::string> keys_of(const std::map<std::string, std::vector<int64_t>>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(entry.first);
  return names;
}

}  // namespace

const std::vector<std::string>& vgg_names() {
  static const std::vector<std::string> names = keys_of(vgg_table());
  return names;
}

ModelPtr build_vgg(const ModelSpec& spec) {
  return std::make_shared<VGG>(vgg_table().at(spec.name), spec);
}

const std::vector<std::string>& densenet_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : densenet_table()) out.push_back(entry.first);
    return out;
  }();
  return names;
}

ModelPtr build_densenet(const ModelSpec& spec) {
  const auto& config = densenet_table().at(spec.name);
  const int64_t growth = config.growth_at_64 * spec.width / 64;
  if (growth < 1) {
    throw UserError("model.width " + std::to_string(spec.width) + " gives " + spec.name +
                    " a growth rate of 0; use model.width >= " +
                    std::to_string((64 + config.growth_at_64 - 1) / config.growth_at_64));
  }
  return std::make_shared<DenseNet>(config, spec, growth);
}

}  // namespace fullbatch::detail
