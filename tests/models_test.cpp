#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/models/model.h"
#include "fullbatch/models/torchscript.h"
#include "model_spec.h"

namespace fullbatch {
namespace {

using testing::spec_of;

// ---- Hand parameter counts, written from the architecture descriptions, not from the code ----

int64_t conv(int64_t in, int64_t out, int64_t k) {
  return in * out * k * k;
}
int64_t bn(int64_t c) {
  return 2 * c;
}
int64_t linear(int64_t in, int64_t out) {
  return in * out + out;
}

int64_t hand_resnet(bool bottleneck, const std::vector<int64_t>& depths, int64_t width,
                    int64_t in_channels, int64_t classes) {
  const int64_t expansion = bottleneck ? 4 : 1;
  int64_t total = conv(in_channels, width, 3) + bn(width);
  int64_t in = width;
  for (size_t s = 0; s < depths.size(); ++s) {
    const int64_t p = width << s;
    for (int64_t b = 0; b < depths[s]; ++b) {
      const bool downsample = (s > 0 && b == 0) || in != p * expansion;
      if (bottleneck) {
        total += conv(in, p, 1) + bn(p) + conv(p, p, 3) + bn(p) + conv(p, 4 * p, 1) + bn(4 * p);
      } else {
        total += conv(in, p, 3) + bn(p) + conv(p, p, 3) + bn(p);
      }
      // Shortcut C: the average pool has no parameters, so 1x1 conv + BN as in option B.
      if (downsample) total += conv(in, p * expansion, 1) + bn(p * expansion);
      in = p * expansion;
    }
  }
  return total + linear(in, classes);
}

// stem_norm: torchvision's stem has norm0 after conv0; the reference's CIFAR stem does not.
int64_t hand_densenet121(int64_t in_channels, int64_t classes, bool stem_norm = false) {
  const int64_t growth = 32, bottleneck = 4 * growth;
  int64_t c = 64;
  int64_t total = conv(in_channels, c, 3) + (stem_norm ? bn(c) : 0);  // conv0 (+ norm0)
  const std::vector<int64_t> blocks = {6, 12, 24, 16};
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (int64_t l = 0; l < blocks[i]; ++l) {
      total += bn(c) + conv(c, bottleneck, 1) + bn(bottleneck) + conv(bottleneck, growth, 3);
      c += growth;
    }
    if (i + 1 < blocks.size()) {
      total += bn(c) + conv(c, c / 2, 1);
      c /= 2;
    }
  }
  EXPECT_EQ(c, 1024);
  return total + bn(c) + linear(c, classes);
}

int64_t hand_vgg16_bn(int64_t classes) {
  const std::vector<int64_t> channels = {64,  64,  128, 128, 256, 256, 256,
                                         512, 512, 512, 512, 512, 512};
  int64_t total = 0, in = 3;
  for (int64_t c : channels) {
    total += conv(in, c, 3) + c + bn(c);  // conv weight + conv bias + BN
    in = c;
  }
  return total + linear(512, classes);
}

TEST(ModelsTest, HandFormulasMatchPublishedCounts) {
  // Sanity of the formulas themselves against counts quoted for these architectures.
  EXPECT_EQ(hand_resnet(false, {2, 2, 2, 2}, 64, 3, 10), 11173962);
  EXPECT_EQ(hand_resnet(false, {3, 4, 6, 3}, 64, 3, 10), 21282122);
  EXPECT_EQ(hand_resnet(true, {3, 4, 6, 3}, 64, 3, 10), 23520842);
  EXPECT_EQ(hand_resnet(true, {3, 4, 23, 3}, 64, 3, 10), 42512970);
  EXPECT_EQ(hand_resnet(true, {3, 8, 36, 3}, 64, 3, 10), 58156618);
  EXPECT_EQ(hand_resnet(false, {3, 3, 3}, 16, 3, 10), 272474);
  // He et al.'s option-A ResNet-20 has 0.27M; the two projections add 16*32+64 and 32*64+128.
  EXPECT_EQ(hand_resnet(false, {3, 3, 3}, 16, 3, 10) - (16 * 32 + 64) - (32 * 64 + 128), 269722);
  EXPECT_EQ(hand_vgg16_bn(10), 14728266);
  // torchvision's ImageNet DenseNet-121 has 7,978,856; swap its 7x7 stem and 1000-way head for a
  // 3x3 stem and a 10-way head; the reference's CIFAR stem also drops norm0.
  EXPECT_EQ(hand_densenet121(3, 10, /*stem_norm=*/true),
            7978856 - conv(3, 64, 7) - linear(1024, 1000) + conv(3, 64, 3) + linear(1024, 10));
  EXPECT_EQ(hand_densenet121(3, 10, /*stem_norm=*/true), 6956426);
  EXPECT_EQ(hand_densenet121(3, 10), 6956426 - bn(64));
}

TEST(ModelsTest, ParameterCountsMatchHandFormulas) {
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet18", 64), 0)), 11173962);
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet20", 16), 0)), 272474);
  EXPECT_EQ(count_parameters(*make_model(spec_of("vgg16", 64), 0)), 14728266);
  EXPECT_EQ(count_parameters(*make_model(spec_of("densenet121", 64), 0)), 6956426 - bn(64));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet50", 64), 0)),
            hand_resnet(true, {3, 4, 6, 3}, 64, 3, 10));

  // Width applies to BasicBlock ResNets too (the reference silently ignored it).
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet18", 16, 1, 7), 0)),
            hand_resnet(false, {2, 2, 2, 2}, 16, 1, 7));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet34", 8), 0)),
            hand_resnet(false, {3, 4, 6, 3}, 8, 3, 10));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet101", 8), 0)),
            hand_resnet(true, {3, 4, 23, 3}, 8, 3, 10));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet152", 8), 0)),
            hand_resnet(true, {3, 8, 36, 3}, 8, 3, 10));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet56", 16), 0)),
            hand_resnet(false, {9, 9, 9}, 16, 3, 10));
  EXPECT_EQ(count_parameters(*make_model(spec_of("resnet110", 4, 1, 100), 0)),
            hand_resnet(false, {18, 18, 18}, 4, 1, 100));
}

TEST(ModelsTest, EveryModelGivesLogitsForCifarAndMnistShapes) {
  const auto names = model_names();
  EXPECT_EQ(names.size(), 23u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    if (name == kTorchScriptModelName) continue;  // a file's module: tests/torchscript_test.cpp
    for (int64_t channels : {3, 1}) {
      const int64_t size = channels == 3 ? 32 : 28;
      const int64_t classes = channels == 3 ? 10 : 7;
      auto model = make_model(spec_of(name, 4, channels, classes), 1);
      model->train();
      auto out = model->forward(torch::randn({2, channels, size, size}));
      ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, classes}));
      EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    }
  }
}

TEST(ModelsTest, ChannelsLastInputGivesTheSameLogits) {
  for (const std::string name : {"resnet18", "resnet50", "vgg11", "densenet121"}) {
    SCOPED_TRACE(name);
    auto model = make_model(spec_of(name, 8), 2);
    model->eval();
    auto x = torch::randn({2, 3, 32, 32});
    torch::NoGradGuard no_grad;
    auto a = model->forward(x);
    auto b = model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-5));
  }
}

TEST(ModelsTest, EveryParameterReceivesAGradient) {
  for (const std::string name : {"resnet18", "resnet50", "vgg13", "densenet121"}) {
    SCOPED_TRACE(name);
    auto model = make_model(spec_of(name, 4), 3);
    auto out = model->forward(torch::randn({3, 3, 32, 32}));
    out.pow(2).mean().backward();
    auto buffers = model->named_buffers();
    for (const auto& p : model->named_parameters()) {
      const auto& key = p.key();
      SCOPED_TRACE(key);
      ASSERT_TRUE(p.value().grad().defined());
      // A conv bias right before a train-mode BN has a zero gradient in exact arithmetic (BN
      // subtracts the batch mean), so only check that it is connected.
      const std::string owner = key.substr(0, key.rfind('.'));
      const bool bias_before_bn = key.size() > 5 && key.substr(key.size() - 5) == ".bias" &&
                                  p.value().dim() == 1 &&
                                  !buffers.contains(owner + ".running_mean");
      if (key.rfind("features.", 0) == 0 && bias_before_bn && name == "vgg13") continue;
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0);
    }
  }
}

TEST(ModelsTest, TrainModeUpdatesBatchNormStatisticsAndEvalModeDoesNot) {
  auto model = make_model(spec_of("resnet20", 4), 4);
  auto mean = model->named_buffers()["bn1.running_mean"];
  auto before = mean.clone();
  model->eval();
  model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_TRUE(torch::equal(mean, before));
  model->train();
  model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_FALSE(torch::equal(mean, before));
}

TEST(ModelsTest, SubmoduleNamesFollowPyTorchConventions) {
  auto resnet = make_model(spec_of("resnet18", 8), 0);
  auto params = resnet->named_parameters();
  for (const char* key :
       {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
        "layer2.0.shortcut.1.weight", "layer2.0.shortcut.2.weight", "layer4.1.conv2.weight",
        "fc.weight", "fc.bias"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
  EXPECT_FALSE(params.contains("layer1.0.shortcut.1.weight"));  // same shape: identity shortcut
  EXPECT_TRUE(resnet->named_buffers().contains("layer3.0.shortcut.2.running_var"));
  // Width 8 -> 8, 16, 32, 64 planes.
  EXPECT_EQ(params["fc.weight"].sizes(), (std::vector<int64_t>{10, 64}));

  // Shortcut C: average pool then 1x1 conv at stride 2; the pool slot is an identity at stride 1.
  auto modules = resnet->named_modules();
  EXPECT_NE(modules["layer2.0.shortcut.0"]->as<torch::nn::AvgPool2d>(), nullptr);
  EXPECT_EQ(params["layer2.0.shortcut.1.weight"].sizes(), (std::vector<int64_t>{16, 8, 1, 1}));
  auto bottleneck = make_model(spec_of("resnet50", 4), 0);
  auto bmodules = bottleneck->named_modules();
  EXPECT_NE(bmodules["layer1.0.shortcut.0"]->as<torch::nn::Identity>(), nullptr);
  EXPECT_TRUE(bottleneck->named_parameters().contains("layer1.0.bn3.weight"));

  auto dense = make_model(spec_of("densenet121", 8), 0)->named_parameters();
  for (const char* key :
       {"features.conv0.weight", "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock4.denselayer16.conv2.weight", "features.transition3.conv.weight",
        "features.norm5.bias", "classifier.weight"}) {
    EXPECT_TRUE(dense.contains(key)) << key;
  }
  auto vgg = make_model(spec_of("vgg11", 64), 0)->named_parameters();
  EXPECT_EQ(vgg["features.0.weight"].sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  EXPECT_EQ(vgg["features.1.weight"].sizes(), (std::vector<int64_t>{64}));  // BN after conv
  EXPECT_EQ(vgg["classifier.weight"].sizes(), (std::vector<int64_t>{10, 512}));
}

TEST(ModelsTest, ConvolutionsAreKaimingNormalFanOut) {
  auto model = make_model(spec_of("resnet18", 32), 5);
  auto params = model->named_parameters();
  auto w = params["layer4.1.conv2.weight"];  // 256 x 256 x 3 x 3: 590k draws
  const double expected = std::sqrt(2.0 / (256 * 9));
  EXPECT_NEAR(w.std().item<double>(), expected, 0.05 * expected);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.01 * expected);
  // fan_out, not fan_in: the shortcut 1x1 conv 64->128 has std sqrt(2/128), not sqrt(2/64).
  auto s = params["layer3.0.shortcut.1.weight"];
  EXPECT_NEAR(s.std().item<double>(), std::sqrt(2.0 / 128), 0.05 * std::sqrt(2.0 / 128));
}

TEST(ModelsTest, BatchNormAndLinearFollowTheirDefaults) {
  auto model = make_model(spec_of("vgg11", 64, 3, 100), 6);
  int ones = 0, zeros = 0;
  for (const auto& p : model->named_parameters()) {
    const auto& key = p.key();
    const auto& t = p.value();
    SCOPED_TRACE(key);
    const bool is_bn =
        key.rfind("features.", 0) == 0 && t.dim() == 1 &&
        model->named_buffers().contains(key.substr(0, key.rfind('.')) + ".running_mean");
    if (is_bn && key.size() > 7 && key.substr(key.size() - 7) == ".weight") {
      EXPECT_TRUE(torch::all(t == 1).item<bool>());
      ++ones;
    } else if (is_bn || (t.dim() == 1 && key.rfind("features.", 0) == 0)) {
      EXPECT_TRUE(torch::all(t == 0).item<bool>());  // BN bias and conv bias
      ++zeros;
    }
  }
  EXPECT_EQ(ones, 8);    // VGG-11 has 8 conv-BN pairs
  EXPECT_EQ(zeros, 16);  // 8 BN biases + 8 conv biases
  // VGG's "classical init" (the reference's vgg.py): Linear N(0, 0.01), bias 0.
  auto params = model->named_parameters();
  auto w = params["classifier.weight"];
  EXPECT_NEAR(w.std().item<double>(), 0.01, 0.001);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.001);
  EXPECT_EQ(params["classifier.bias"].abs().max().item<double>(), 0.0);
  // ResNet keeps torch's default Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  auto resnet = make_model(spec_of("resnet18", 64), 0)->named_parameters();
  const double bound = 1.0 / std::sqrt(512.0);
  auto rw = resnet["fc.weight"];
  EXPECT_LE(rw.abs().max().item<double>(), bound);
  EXPECT_GT(rw.abs().max().item<double>(), 0.99 * bound);
  EXPECT_NEAR(rw.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound);
  auto rb = resnet["fc.bias"];
  EXPECT_LE(rb.abs().max().item<double>(), bound);
  EXPECT_GT(rb.abs().max().item<double>(), 0.5 * bound);
}

TEST(ModelsTest, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  auto a = make_model(spec_of("resnet18", 8), 42)->named_parameters();
  auto b = make_model(spec_of("resnet18", 8), 42)->named_parameters();
  auto c = make_model(spec_of("resnet18", 8), 43)->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) {
    SCOPED_TRACE(p.key());
    EXPECT_TRUE(torch::equal(p.value(), b[p.key()]));
    if (p.key().find("conv") != std::string::npos || p.key().find("fc.") == 0) {
      EXPECT_FALSE(torch::equal(p.value(), c[p.key()]));
    }
  }
}

TEST(ModelsTest, ZeroInitResidualZeroesTheLastBatchNormOfEachBranch) {
  for (const std::string name : {"resnet18", "resnet50", "resnet20"}) {
    SCOPED_TRACE(name);
    auto spec = spec_of(name, 4);
    const std::string last = name == "resnet50" ? ".bn3.weight" : ".bn2.weight";
    auto off = make_model(spec, 7)->named_parameters();
    spec.zero_init_residual = true;
    auto on = make_model(spec, 7)->named_parameters();
    int zeroed = 0;
    for (const auto& p : on) {
      const auto& key = p.key();
      SCOPED_TRACE(key);
      const bool is_last = key.rfind("layer", 0) == 0 && key.size() > last.size() &&
                           key.substr(key.size() - last.size()) == last;
      if (is_last) {
        EXPECT_TRUE(torch::all(p.value() == 0).item<bool>());
        EXPECT_TRUE(torch::all(off[key] == 1).item<bool>());
        ++zeroed;
      } else {
        EXPECT_TRUE(torch::equal(p.value(), off[key]));
      }
    }
    const int blocks = name == "resnet18" ? 8 : name == "resnet50" ? 16 : 9;
    EXPECT_EQ(zeroed, blocks);
  }
  // No residual branches: the option changes nothing.
  auto spec = spec_of("densenet121", 4);
  auto off = make_model(spec, 8)->named_parameters();
  spec.zero_init_residual = true;
  auto on = make_model(spec, 8)->named_parameters();
  for (const auto& p : on) EXPECT_TRUE(torch::equal(p.value(), off[p.key()])) << p.key();
}

TEST(ModelsTest, BadSpecsThrowUserErrorNamingTheProblem) {
  try {
    make_model(spec_of("resnet19", 64), 0);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet19"), std::string::npos) << msg;
    EXPECT_NE(msg.find("resnet18"), std::string::npos) << msg;
    EXPECT_NE(msg.find("densenet121"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_THROW(make_model(spec_of("resnet18", 0), 0), UserError);
  EXPECT_THROW(make_model(spec_of("resnet18", -3), 0), UserError);
  EXPECT_THROW(make_model(spec_of("resnet18", 8, 0), 0), UserError);
  EXPECT_THROW(make_model(spec_of("vgg11", 8, 3, 0), 0), UserError);
  EXPECT_THROW(make_model(spec_of("densenet121", 1), 0), UserError);  // growth rate 0
}

// Each family starts as the reference's model code initializes it (models/zoo.h): the spread of
// the weights tells fan_in from fan_out and N(0, 0.01) from the uniform default.
TEST(ModelsTest, FamiliesInitializeAsTheReference) {
  auto std_of = [](const torch::Tensor& t) { return t.std().item<double>(); };
  auto dense = make_model(spec_of("densenet121", 64), 0)->named_parameters();
  // denselayer1.conv1: 1x1 from 64 to 128 channels; fan_in 64, fan_out 128.
  EXPECT_NEAR(std_of(dense["features.denseblock1.denselayer1.conv1.weight"]), std::sqrt(2.0 / 64),
              0.01);
  EXPECT_EQ(dense["classifier.bias"].abs().max().item<double>(), 0.0);
  EXPECT_FALSE(dense.contains("features.norm0.weight")) << "the CIFAR stem is conv0 alone";
  EXPECT_NEAR(std_of(dense["classifier.weight"]), 1.0 / std::sqrt(3.0 * 1024),
              0.003);  // U(+-1/sqrt(fan_in))
  auto vgg = make_model(spec_of("vgg16", 64), 0)->named_parameters();
  EXPECT_NEAR(std_of(vgg["classifier.weight"]), 0.01, 0.001);
  EXPECT_EQ(vgg["classifier.bias"].abs().max().item<double>(), 0.0);
  EXPECT_EQ(vgg["features.0.bias"].abs().max().item<double>(), 0.0);
  auto resnet = make_model(spec_of("resnet18", 64), 0)->named_parameters();
  // layer2.0.conv1: 3x3 from 64 to 128; fan_out 1152 (fan_in would be 576).
  EXPECT_NEAR(std_of(resnet["layer2.0.conv1.weight"]), std::sqrt(2.0 / 1152), 0.002);
  EXPECT_GT(resnet["fc.bias"].abs().max().item<double>(), 0.0);
}

}  // namespace
}  // namespace fullbatch
