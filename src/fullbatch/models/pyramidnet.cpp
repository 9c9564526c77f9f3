// PyramidNet (Han et al., "Deep Pyramidal Residual Networks"), the CIFAR variant the reference
// trains: a 16-channel stem, three stages whose width grows by alpha / (3 n) every block,
// zero-padded identity shortcuts (average-pooled where the stage halves the resolution) and no ReLU
// after the sum. Module names follow the reference's (conv1, bn1, layer1.0.bn1, ..., bn_final, fc).
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "fullbatch/common/error.h"
#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

namespace nn = torch::nn;

// The reference rounds channel counts with Python's round(), which rounds halves to even;
// std::round would round them away from zero.
int64_t round_half_even(double x) {
  const double lower = std::floor(x);
  const double frac = x - lower;
  if (frac > 0.5) return static_cast<int64_t>(lower) + 1;
  if (frac < 0.5) return static_cast<int64_t>(lower);
  return static_cast<int64_t>(lower) + (std::fmod(lower, 2.0) == 0.0 ? 0 : 1);
}

struct ConvSpec {
  int64_t in, out, kernel, stride;
};

// The branch is BN - conv, then (BN - ReLU - conv) for each further conv, then a last BN; there is
// no activation before the first conv. The basic block's convs are 3x3 (stride), 3x3: bn1 conv1
// bn2 conv2 bn3. The bottleneck's are 1x1, 3x3 (stride), 1x1 to 4x: bn1 conv1 ... conv3 bn4.
// The shortcut is the input (average-pooled 2x2 with ceil_mode at stride 2, as the reference's
// downsample), zero-padded to the branch's channels.
class PyramidBlockImpl : public nn::Module, public ResidualBranch {
 public:
  PyramidBlockImpl(const std::vector<ConvSpec>& convs, int64_t stride) : stride_(stride) {
    for (size_t i = 0; i < convs.size(); ++i) {
      const ConvSpec& c = convs[i];
      const std::string index = std::to_string(i + 1);
      norms_.push_back(register_module("bn" + index, BlockBatchNorm2d(c.in)));
      convs_.push_back(
          register_module("conv" + index, nn::Conv2d(nn::Conv2dOptions(c.in, c.out, c.kernel)
                                                         .stride(c.stride)
                                                         .padding(c.kernel / 2)
                                                         .bias(false))));
    }
    norms_.push_back(register_module("bn" + std::to_string(convs.size() + 1),
                                     BlockBatchNorm2d(convs.back().out)));
  }

  // Zeroing the last BN makes the block its (zero-padded) shortcut.
  void zero_last_bn() override {
    torch::NoGradGuard no_grad;
    norms_.back()->weight.zero_();
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      out = norms_[i](out);
      if (i > 0) out.relu_();
      out = convs_[i](out);
    }
    out = norms_.back()(out);
    const torch::Tensor shortcut =
        stride_ == 1 ? x : torch::avg_pool2d(x, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true);
    // Adding the shortcut into the first channels equals the reference's sum with the shortcut
    // concatenated to zeros, without allocating the zeros.
    if (shortcut.size(1) == out.size(1)) {
      out += shortcut;
    } else {
      out.narrow(1, 0, shortcut.size(1)).add_(shortcut);
    }
    return out;
  }

 private:
  int64_t stride_;
  std::vector<BlockBatchNorm2d> norms_;
  std::vector<nn::Conv2d> convs_;
};
TORCH_MODULE(PyramidBlock);

PyramidBlock make_block(bool bottleneck, int64_t in, int64_t planes, int64_t stride) {
  if (bottleneck) {
    return PyramidBlock(
        std::vector<ConvSpec>{
            {in, planes, 1, 1}, {planes, planes, 3, stride}, {planes, 4 * planes, 1, 1}},
        stride);
  }
  return PyramidBlock(std::vector<ConvSpec>{{in, planes, 3, stride}, {planes, planes, 3, 1}},
                      stride);
}

struct PyramidConfig {
  int64_t depth;
  double alpha;  // total widening over the three stages at model.width 64
  bool bottleneck;
};

// The reference's config/model/pyramidnet110.yaml and pyramidnet272.yaml.
const std::map<std::string, PyramidConfig>& pyramid_table() {
  static const std::map<std::string, PyramidConfig> table = {
      {"pyramidnet110", {110, 84.0, false}},
      {"pyramidnet272", {272, 200.0, true}},
  };
  return table;
}

struct BlockPlan {
  int64_t in;
  int64_t planes;
  int64_t stride;
};

// The reference's channel schedule, with its floating-point accumulation and rounding, so every
// block gets exactly the reference's width: the running width grows by alpha / (3 n) per block and
// each block takes its rounded value; a block's input is its predecessor's planes * expansion (the
// stem's width for the first block).
std::vector<std::vector<BlockPlan>> pyramid_plan(int64_t blocks_per_stage, double alpha,
                                                 int64_t expansion, int64_t stem) {
  const double addrate = alpha / (3.0 * static_cast<double>(blocks_per_stage));
  std::vector<std::vector<BlockPlan>> stages(3);
  int64_t in = stem;
  double dim = static_cast<double>(stem);
  for (int64_t s = 0; s < 3; ++s) {
    dim += addrate;
    stages[s].push_back({in, round_half_even(dim), s == 0 ? 1 : 2});
    for (int64_t b = 1; b < blocks_per_stage; ++b) {
      const double next = dim + addrate;
      stages[s].push_back({round_half_even(dim) * expansion, round_half_even(next), 1});
      dim = next;
    }
    in = round_half_even(dim) * expansion;
  }
  return stages;
}

// The stem is a stride-1 3x3 conv and BN with no ReLU (the first block starts with BN); the head is
// BN, ReLU, global average pooling (the reference's AvgPool2d(8), the same on 32x32 input, but
// defined for any size) and fc. model.width scales the stem (16 at width 64) and alpha together.
class PyramidNet : public Classifier {
 public:
  PyramidNet(const PyramidConfig& config, const ModelSpec& spec, int64_t stem) {
    const int64_t expansion = config.bottleneck ? 4 : 1;
    const int64_t n = (config.depth - 2) / (config.bottleneck ? 9 : 6);
    const double alpha = config.alpha * static_cast<double>(spec.width) / 64.0;
    conv1 = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(spec.in_channels, stem, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", BlockBatchNorm2d(stem));
    const auto plan = pyramid_plan(n, alpha, expansion, stem);
    int64_t out = stem;
    for (size_t s = 0; s < plan.size(); ++s) {
      nn::Sequential layer;
      for (const BlockPlan& b : plan[s]) {
        layer->push_back(make_block(config.bottleneck, b.in, b.planes, b.stride));
        out = b.planes * expansion;
      }
      layers.push_back(register_module("layer" + std::to_string(s + 1), layer));
    }
    bn_final = register_module("bn_final", BlockBatchNorm2d(out));
    fc = register_module("fc", nn::Linear(out, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor out = bn1(conv1(x));
    for (auto& layer : layers) out = layer->forward(out);
    return fc(torch::adaptive_avg_pool2d(bn_final(out).relu_(), {1, 1}).flatten(1));
  }

 private:
  std::vector<nn::Sequential> layers;  // layer1, layer2, layer3
  nn::Conv2d conv1{nullptr};
  BlockBatchNorm2d bn1{nullptr}, bn_final{nullptr};
  nn::Linear fc{nullptr};
};

}  // namespace

const std::vector<std::string>& pyramidnet_names() {
  static const std::vector<std::string> names = {"pyramidnet110", "pyramidnet272"};
  return names;
}

ModelPtr build_pyramidnet(const ModelSpec& spec) {
  const int64_t stem = 16 * spec.width / 64;
  if (stem < 1) {
    throw UserError("model.width " + std::to_string(spec.width) + " gives " + spec.name +
                    " a stem of 0 channels; use model.width >= 4");
  }
  return std::make_shared<PyramidNet>(pyramid_table().at(spec.name), spec, stem);
}

}  // namespace fullbatch::detail
