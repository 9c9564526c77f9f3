#include <torch/torch.h>

#include <map>

#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

nn::Conv2d conv1x1(int64_t in, int64_t out) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false));
}

// Shortcut "C": average-pool first so the 1x1 projection sees every input pixel instead of
// discarding three quarters of them as a strided 1x1 conv would. Slot 0 stays an Identity at
// stride 1 so the projection is always shortcut.1 / shortcut.2 in a state dict. ceil_mode keeps
// the shortcut's size equal to the strided 3x3 conv's, ceil(H/2), on odd inputs (28x28 reaches
// 7x7); on even sizes it changes nothing.
nn::Sequential make_shortcut(int64_t in, int64_t out, int64_t stride) {
  nn::Sequential shortcut;
  if (stride == 1) {
    shortcut->push_back(nn::Identity());
  } else {
    shortcut->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(stride).stride(stride).ceil_mode(true)));
  }
  shortcut->push_back(conv1x1(in, out));
  shortcut->push_back(BlockBatchNorm2d(out));
  return shortcut;
}

// What both residual blocks share: the shortcut (identity, or projection "C" when the shape
// changes), the sum and the final ReLU, and the branch's last BatchNorm, which
// zero_init_residual zeroes so the block starts as its shortcut.
class ResidualBlock : public nn::Module, public ResidualBranch {
 public:
  void zero_last_bn() override {
    torch::NoGradGuard no_grad;
    last_bn_->weight.zero_();
  }

 protected:
  // Called at the end of a constructor, so the shortcut registers after the branch (module order
  // fixes the initialization's draws and the state dict's order).
  void finish_block(int64_t in, int64_t out, int64_t stride, BlockBatchNorm2d last_bn) {
    if (stride != 1 || in != out) shortcut_ = register_module("shortcut", make_shortcut(in, out, stride));
    last_bn_ = std::move(last_bn);
  }

  torch::Tensor join(torch::Tensor branch, const torch::Tensor& x) {
    branch += shortcut_.is_empty() ? x : shortcut_->forward(x);
    return branch.relu_();
  }

 private:
  nn::Sequential shortcut_{nullptr};
  BlockBatchNorm2d last_bn_{nullptr};
};

class BasicBlockImpl : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 1;

  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1(register_module("conv1", conv3x3(in, planes, stride))),
        bn1(register_module("bn1", BlockBatchNorm2d(planes))),
        conv2(register_module("conv2", conv3x3(planes, planes, 1))),
        bn2(register_module("bn2", BlockBatchNorm2d(planes))) {
    finish_block(in, planes, stride, bn2);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = bn1(conv1(x)).relu_();
    return join(bn2(conv2(out)), x);
  }

  nn::Conv2d conv1;
  BlockBatchNorm2d bn1;
  nn::Conv2d conv2;
  BlockBatchNorm2d bn2;
};
TORCH_MODULE(BasicBlock);

// The stride sits on the 3x3 conv (as in torchvision's ResNet v1.5), not on the first 1x1.
class BottleneckImpl : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1(register_module("conv1", conv1x1(in, planes))),
        bn1(register_module("bn1", BlockBatchNorm2d(planes))),
        conv2(register_module("conv2", conv3x3(planes, planes, stride))),
        bn2(register_module("bn2", BlockBatchNorm2d(planes))),
        conv3(register_module("conv3", conv1x1(planes, planes * kExpansion))),
        bn3(register_module("bn3", BlockBatchNorm2d(planes * kExpansion))) {
    finish_block(in, planes * kExpansion, stride, bn3);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = bn1(conv1(x)).relu_();
    out = bn2(conv2(out)).relu_();
    return join(bn3(conv3(out)), x);
  }

  nn::Conv2d conv1;
  BlockBatchNorm2d bn1;
  nn::Conv2d conv2;
  BlockBatchNorm2d bn2;
  nn::Conv2d conv3;
  BlockBatchNorm2d bn3;
};
TORCH_MODULE(Bottleneck);

enum class BlockKind { kBasic, kBottleneck };

struct ResNetConfig {
  BlockKind block;
  std::vector<int64_t> depths;  // blocks per stage; the stage count is depths.size()
};

const std::map<std::string, ResNetConfig>& resnet_table() {
  static const std::map<std::string, ResNetConfig> table = {
      {"resnet18", {BlockKind::kBasic, {2, 2, 2, 2}}},
      {"resnet34", {BlockKind::kBasic, {3, 4, 6, 3}}},
      {"resnet50", {BlockKind::kBottleneck, {3, 4, 6, 3}}},
      {"resnet101", {BlockKind::kBottleneck, {3, 4, 23, 3}}},
      {"resnet152", {BlockKind::kBottleneck, {3, 8, 36, 3}}},
      // He et al.'s 3-stage CIFAR networks: depth = 6n + 2.
      {"resnet20", {BlockKind::kBasic, {3, 3, 3}}},
      {"resnet32", {BlockKind::kBasic, {5, 5, 5}}},
      {"resnet56", {BlockKind::kBasic, {9, 9, 9}}},
      {"resnet110", {BlockKind::kBasic, {18, 18, 18}}},
  };
  return table;
}

// The CIFAR stem: one stride-1 3x3 conv and no max-pool, since 32x32 inputs leave no resolution to
// throw away. Stage i has width * 2^i planes and halves the resolution from the second stage on.
class ResNet : public Classifier {
 public:
  ResNet(const ResNetConfig& config, const ModelSpec& spec) {
    conv1 = register_module("conv1", conv3x3(spec.in_channels, spec.width, 1));
    bn1 = register_module("bn1", BlockBatchNorm2d(spec.width));
    int64_t in = spec.width;
    for (size_t stage = 0; stage < config.depths.size(); ++stage) {
      const int64_t planes = spec.width << stage;
      nn::Sequential layer;
      for (int64_t b = 0; b < config.depths[stage]; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        if (config.block == BlockKind::kBasic) {
          layer->push_back(BasicBlock(in, planes, stride));
          in = planes * BasicBlockImpl::kExpansion;
        } else {
          layer->push_back(Bottleneck(in, planes, stride));
          in = planes * BottleneckImpl::kExpansion;
        }
      }
      layers.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    fc = register_module("fc", nn::Linear(in, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = bn1(conv1(x)).relu_();
    for (auto& layer : layers) out = layer->forward(out);
    out = torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
    return fc(out);
  }

 private:
  nn::Conv2d conv1{nullptr};
  BlockBatchNorm2d bn1{nullptr};
  std::vector<nn::Sequential> layers;
  nn::Linear fc{nullptr};
};

}  // namespace

const std::vector<std::string>& resnet_names() {
  static const std::vector<std::string> names = {"resnet18",  "resnet34",  "resnet50",
                                                 "resnet101", "resnet152", "resnet20",
                                                 "resnet32",  "resnet56",  "resnet110"};
  return names;
}

ModelPtr build_resnet(const ModelSpec& spec) {
  return std::make_shared<ResNet>(resnet_table().at(spec.name), spec);
}

}  // namespace fullbatch::detail
