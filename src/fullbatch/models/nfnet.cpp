// The normalizer-free network (Brock et al., NFNet-F0) as the reference configures it
// (config/model/nfn.yaml): the CIFAR stem, alpha 0.2, squeeze-excite ratio 0.5, variance-preserving
// GELU, no dropout and no stochastic depth. There is no normalization layer: every convolution is
// a scaled weight-standardized one with a learnable per-channel gain, and each residual branch is
// scaled by alpha and a learnable skip gain that starts at 0. Module and parameter names follow the
// reference's (stem.conv0, body.0.conv1b.gain, body.0.squeeze_excite.linear_1, body.0.skip_gain,
// final_conv, linear), so its state dict maps one to one.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/models/zoo.h"

namespace fullbatch::detail {
namespace {

namespace nn = torch::nn;

// GELU times the constant that makes its output variance 1 for a standard normal input, as the
// reference's activation does.
constexpr double kGeluGain = 1.7015043497085571;
// The floor of var * fan_in, so a constant filter does not divide by zero.
constexpr double kStandardizeEps = 1e-4;

torch::Tensor vp_gelu(const torch::Tensor& x) {
  return torch::gelu(x) * kGeluGain;
}

}  // namespace

torch::Tensor ws_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias, const torch::Tensor& gain, int64_t stride,
                        int64_t padding, int64_t groups) {
  // Per output channel: subtract the filter's mean and divide by sqrt(max(var * fan_in, eps)),
  // var being the unbiased variance (torch.var's default, as the reference calls it).
  const int64_t fan_in = weight.numel() / weight.size(0);
  const auto centered = weight - weight.mean({1, 2, 3}, /*keepdim=*/true);
  const auto var =
      centered.pow(2).sum({1, 2, 3}, /*keepdim=*/true) / static_cast<double>(fan_in - 1);
  const auto scale =
      torch::rsqrt(torch::clamp_min(var * static_cast<double>(fan_in), kStandardizeEps));
  return torch::conv2d(x, centered * scale * gain, bias, {stride, stride}, {padding, padding},
                       {1, 1}, groups);
}

namespace {

// A Conv2d whose forward uses the standardized weight. Its state is the reference's WSConv2D's:
// weight, bias (a conv keeps its bias: there is no normalization after it) and gain [out, 1, 1, 1].
class WSConv2dImpl : public nn::Module {
 public:
  WSConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
               int64_t groups = 1)
      : stride_(stride), padding_(padding), groups_(groups) {
    weight = register_parameter("weight", torch::zeros({out, in / groups, kernel, kernel}));
    bias = register_parameter("bias", torch::zeros({out}));
    gain = register_parameter("gain", torch::ones({out, 1, 1, 1}));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    return ws_conv2d(x, weight, bias, gain, stride_, padding_, groups_);
  }

  torch::Tensor weight, bias, gain;

 private:
  int64_t stride_, padding_, groups_;
};
TORCH_MODULE(WSConv2d);

// Four unpadded 3x3 convolutions (16, 32, 64, 128 channels at model.width 64), stride 1 in the
// CIFAR stem (the ImageNet stem strides the first and last by 2); no activation after the last.
class StemImpl : public nn::Module {
 public:
  StemImpl(int64_t in, const std::vector<int64_t>& widths)
      : conv0(register_module("conv0", WSConv2d(in, widths[0], 3))),
        conv1(register_module("conv1", WSConv2d(widths[0], widths[1], 3))),
        conv2(register_module("conv2", WSConv2d(widths[1], widths[2], 3))),
        conv3(register_module("conv3", WSConv2d(widths[2], widths[3], 3))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = vp_gelu(conv0(x));
    out = vp_gelu(conv1(out));
    out = vp_gelu(conv2(out));
    return conv3(out);
  }

  WSConv2d conv0, conv1, conv2, conv3;
};
TORCH_MODULE(Stem);

// Channel gates: global mean, Linear to int(channels * ratio), activation, Linear back, sigmoid.
class SqueezeExciteImpl : public nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, double ratio) {
    const int64_t hidden =
        std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(channels) * ratio));
    linear = register_module("linear", nn::Linear(channels, hidden));
    linear_1 = register_module("linear_1", nn::Linear(hidden, channels));
  }

  // x: [n, c, h, w] -> gates [n, c, 1, 1]
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = linear_1(vp_gelu(linear(x.mean({2, 3}))));
    return torch::sigmoid(out).view({x.size(0), x.size(1), 1, 1});
  }

  nn::Linear linear{nullptr}, linear_1{nullptr};
};
TORCH_MODULE(SqueezeExcite);

struct NFBlockOptions {
  int64_t in;
  int64_t out;
  int64_t stride;
  double beta;  // 1 / the expected std of the block's input
  double alpha;
  int64_t group_size;
  double se_ratio;
};

// out = act(x) * beta; branch = conv1x1 - act - grouped conv3x3 (stride) - act - grouped conv3x3 -
// act - conv1x1 (expansion 0.5), then gated by 2 * SE; the block returns
// branch * alpha * skip_gain + shortcut. The shortcut is x itself, or, where the shape changes, a
// 1x1 conv of act(x) * beta (average-pooled 2x2 first at stride 2).
class NFBlockImpl : public nn::Module {
 public:
  explicit NFBlockImpl(const NFBlockOptions& o)
      : stride_(o.stride), beta_(o.beta), alpha_(o.alpha) {
    const int64_t groups = (o.out / 2) / o.group_size;
    const int64_t width = o.group_size * groups;
    conv0 = register_module("conv0", WSConv2d(o.in, width, 1));
    conv1 = register_module("conv1", WSConv2d(width, width, 3, o.stride, 1, groups));
    conv1b = register_module("conv1b", WSConv2d(width, width, 3, 1, 1, groups));
    conv2 = register_module("conv2", WSConv2d(width, o.out, 1));
    if (o.stride > 1 || o.in != o.out) {
      conv_shortcut = register_module("conv_shortcut", WSConv2d(o.in, o.out, 1));
    }
    squeeze_excite = register_module("squeeze_excite", SqueezeExcite(o.out, o.se_ratio));
    skip_gain = register_parameter("skip_gain", torch::zeros(at::IntArrayRef{}));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = vp_gelu(x) * beta_;
    torch::Tensor shortcut = x;
    if (stride_ > 1) {
      // ceil_mode keeps the shortcut's size equal to the strided conv's, ceil(H/2), on odd sizes
      // (MNIST's 28x28 reaches 5x5), where the reference's floor-mode pool would not; on the even
      // sizes of 32x32 input it changes nothing.
      shortcut = conv_shortcut(torch::avg_pool2d(out, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true));
    } else if (!conv_shortcut.is_empty()) {
      shortcut = conv_shortcut(out);
    }
    out = vp_gelu(conv0(out));
    out = vp_gelu(conv1(out));
    out = vp_gelu(conv1b(out));
    out = conv2(out);
    out = (squeeze_excite(out) * 2) * out;
    return out * alpha_ * skip_gain + shortcut;
  }

  WSConv2d conv0{nullptr}, conv1{nullptr}, conv1b{nullptr}, conv2{nullptr};
  WSConv2d conv_shortcut{nullptr};
  SqueezeExcite squeeze_excite{nullptr};
  torch::Tensor skip_gain;

 private:
  int64_t stride_;
  double beta_, alpha_;
};
TORCH_MODULE(NFBlock);

// F0 at model.width 64: four stages of 1, 2, 6, 3 blocks, 256, 512, 1536, 1536 channels, group
// width 128, strides 1, 2, 2, 2; the head is a 1x1 conv to twice the last width, act, global mean
// and Linear. model.width scales every channel count and the group width by width / 64 (so the
// number of groups stays 1, 2, 6, 6).
class NFNet : public Classifier {
 public:
  explicit NFNet(const ModelSpec& spec) {
    constexpr double kAlpha = 0.2;
    constexpr double kSeRatio = 0.5;
    const std::vector<int64_t> depths = {1, 2, 6, 3};
    const std::vector<int64_t> strides = {1, 2, 2, 2};
    auto scaled = [&](int64_t channels) { return channels * spec.width / 64; };
    const std::vector<int64_t> widths = {scaled(256), scaled(512), scaled(1536), scaled(1536)};
    const std::vector<int64_t> stem_widths = {scaled(16), scaled(32), scaled(64), scaled(128)};
    stem = register_module("stem", Stem(spec.in_channels, stem_widths));
    nn::Sequential blocks;
    // The reference's signal-propagation bookkeeping: beta = 1 / expected std of a block's input;
    // the variance grows by alpha^2 per block and restarts from 1 after each stage's transition
    // block (whose shortcut is a fresh conv of the normalized input).
    double expected_std = 1.0;
    int64_t in = widths[0] / 2;  // = the stem's output channels
    for (size_t s = 0; s < depths.size(); ++s) {
      for (int64_t b = 0; b < depths[s]; ++b) {
        blocks->push_back(
            NFBlock(NFBlockOptions{in, widths[s], b == 0 ? strides[s] : 1, 1.0 / expected_std,
                                   kAlpha, scaled(128), kSeRatio}));
        in = widths[s];
        if (b == 0) expected_std = 1.0;
        expected_std = std::pow(expected_std * expected_std + kAlpha * kAlpha, 0.5);
      }
    }
    body = register_module("body", blocks);
    final_conv = register_module("final_conv", WSConv2d(in, 2 * in, 1));
    linear = register_module("linear", nn::Linear(2 * in, spec.num_classes));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = body->forward(stem(x));
    out = vp_gelu(final_conv(out)).mean({2, 3});
    return linear(out);
  }

 private:
  Stem stem{nullptr};
  nn::Sequential body{nullptr};
  WSConv2d final_conv{nullptr};
  nn::Linear linear{nullptr};
};

// torch's default Linear initialization: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight
// (kaiming_uniform with a = sqrt(5)) and for the bias.
void uniform_fan_in(torch::Tensor& t, int64_t fan_in, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  t.uniform_(-bound, bound, gen);
}

}  // namespace

void initialize_nfnet(torch::nn::Module& model, at::Generator gen) {
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
    const auto& module = item.value();
    if (auto* conv = module->as<WSConv2d>()) {
      // WSConv2D: xavier_normal_ weight, Conv2d's default bias U(+-1/sqrt(fan_in)), gain 1.
      const auto& w = conv->weight;  // [out, in/groups, kh, kw]
      const int64_t receptive = w.size(2) * w.size(3);
      const int64_t fan_in = w.size(1) * receptive, fan_out = w.size(0) * receptive;
      w.normal_(0.0, std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
      uniform_fan_in(conv->bias, fan_in, gen);
      conv->gain.fill_(1.0);
    } else if (auto* linear = module->as<nn::Linear>()) {
      // The classifier's weight is N(0, 0.01) with the default bias; the SE layers keep torch's
      // default for both.
      const int64_t fan_in = linear->weight.size(1);
      if (item.key() == "linear") {
        linear->weight.normal_(0.0, 0.01, gen);
      } else {
        uniform_fan_in(linear->weight, fan_in, gen);
      }
      uniform_fan_in(linear->bias, fan_in, gen);
    } else if (auto* block = module->as<NFBlock>()) {
      block->skip_gain.zero_();
    }
  }
}

const std::vector<std::string>& nfnet_names() {
  static const std::vector<std::string> names = {"nfnet"};
  return names;
}

ModelPtr build_nfnet(const ModelSpec& spec) {
  if (16 * spec.width / 64 < 1) {
    throw UserError("model.width " + std::to_string(spec.width) + " gives " + spec.name +
                    " a stem of 0 channels; use model.width >= 4");
  }
  return std::make_shared<NFNet>(spec);
}

}  // namespace fullbatch::detail
