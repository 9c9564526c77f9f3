// The reference's remaining models: pyramidnet110, pyramidnet272, nfnet (NFNet-F0, CIFAR stem),
// linear and densenet161/169/201. Parameter counts against an independent Python statement of the
// reference's architectures, forward shapes, the reference's initialization, seeding, and NFNet's
// weight-standardized convolution against a hand computation of its formula.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/models/model.h"
#include "fullbatch/models/zoo.h"
#include "model_spec.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::spec_of;

const std::vector<std::string> kNames = {"pyramidnet110", "pyramidnet272", "nfnet",      "linear",
                                         "densenet161",   "densenet169",   "densenet201"};

// Printed by scripts/reference_param_counts.py, a plain-torch statement of the reference's
// architectures written from its Python sources, not from this C++:
//   python3 scripts/reference_param_counts.py                  (3 channels, 10 classes, width 64)
const std::map<std::string, int64_t> kReferenceCounts = {
    {"pyramidnet110", 3904446}, {"pyramidnet272", 26210842}, {"nfnet", 68447014},
    {"linear", 1010},           {"densenet161", 26482378},   {"densenet169", 12493322},
    {"densenet201", 18104330}};
//   python3 scripts/reference_param_counts.py --width 8
const std::map<std::string, int64_t> kWidth8Counts = {
    {"pyramidnet110", 63682}, {"pyramidnet272", 434717}, {"nfnet", 1085216},     {"linear", 1010},
    {"densenet161", 440530},  {"densenet169", 214538},   {"densenet201", 310218}};
//   python3 scripts/reference_param_counts.py --width 4 --channels 1 --classes 7
const std::map<std::string, int64_t> kWidth4MnistCounts = {
    {"pyramidnet110", 16514}, {"pyramidnet272", 115428}, {"nfnet", 275212},     {"linear", 707},
    {"densenet161", 117253},  {"densenet169", 58775},    {"densenet201", 84935}};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double std_of(const torch::Tensor& t) {
  return t.std().item<double>();
}

double max_abs(const torch::Tensor& t) {
  return t.abs().max().item<double>();
}

TEST(ModelsExtraTest, ParameterCountsMatchTheReferenceScript) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    EXPECT_EQ(count_parameters(*make_model(spec_of(name, 64), 0)), kReferenceCounts.at(name));
    EXPECT_EQ(count_parameters(*make_model(spec_of(name, 8), 0)), kWidth8Counts.at(name));
    EXPECT_EQ(count_parameters(*make_model(spec_of(name, 4, 1, 7), 0)),
              kWidth4MnistCounts.at(name));
  }
}

// The reference's architectures themselves (model.width 64) on a batch of 2: pyramidnet272 and
// nfnet take a few seconds here.
TEST(ModelsExtraTest, ReferenceWidthModelsGiveFiniteLogits) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    auto model = make_model(spec_of(name, 64), 1);
    model->train();
    torch::NoGradGuard no_grad;
    auto out = model->forward(torch::randn({2, 3, 32, 32}));
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 10}));
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  }
}

// 28x28 input reaches odd sizes (7x7 in PyramidNet, 5x5 in NFNet), where the strided shortcuts
// must still match the strided convolutions.
TEST(ModelsExtraTest, NarrowModelsGiveLogitsForMnistShapes) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    auto model = make_model(spec_of(name, 8, 1, 7), 2);
    auto out = model->forward(torch::randn({2, 1, 28, 28}));
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 7}));
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    out.pow(2).mean().backward();  // the graph is differentiable end to end
  }
}

// Constant at initialization, whatever the seed: BatchNorm's affine parameters (their module has
// running statistics among `buffers`), NFNet's gains and skip gains, DenseNet's classifier bias
// (0).
bool is_constant_init(const torch::OrderedDict<std::string, torch::Tensor>& buffers,
                      const std::string& key) {
  if (ends_with(key, ".gain") || ends_with(key, "skip_gain") || key == "classifier.bias")
    return true;
  return buffers.contains(key.substr(0, key.rfind('.')) + ".running_mean");
}

TEST(ModelsExtraTest, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    auto model_a = make_model(spec_of(name, 8), 42);
    auto a = model_a->named_parameters();
    const auto buffers = model_a->named_buffers();
    auto b = make_model(spec_of(name, 8), 42)->named_parameters();
    auto c = make_model(spec_of(name, 8), 43)->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    int random = 0;
    for (const auto& p : a) {
      SCOPED_TRACE(p.key());
      EXPECT_TRUE(torch::equal(p.value(), b[p.key()]));
      if (is_constant_init(buffers, p.key())) {
        EXPECT_TRUE(torch::equal(p.value(), c[p.key()]));
      } else {
        EXPECT_FALSE(torch::equal(p.value(), c[p.key()]));
        ++random;
      }
    }
    EXPECT_GT(random, 0);
  }
}

// pyramidnets.py: convolutions N(0, sqrt(2 / (k * k * out_channels))) (fan_out), BatchNorm 1 and
// 0, fc torch's default.
TEST(ModelsExtraTest, PyramidNetInitializesAsTheReference) {
  auto model = make_model(spec_of("pyramidnet272", 64), 3);
  auto params = model->named_parameters();
  // layer3.29.conv1: 1x1 from 856 to 216 channels: fan_out 216 (fan_in would be 856).
  auto w = params["layer3.29.conv1.weight"];
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{216, 856, 1, 1}));
  EXPECT_NEAR(std_of(w), std::sqrt(2.0 / 216), 0.03 * std::sqrt(2.0 / 216));
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.01 * std::sqrt(2.0 / 216));
  // layer2.3.conv2: 3x3, fan_out 9 * out.
  auto w3 = params["layer2.3.conv2.weight"];
  const double expected = std::sqrt(2.0 / (9.0 * static_cast<double>(w3.size(0))));
  EXPECT_NEAR(std_of(w3), expected, 0.05 * expected);
  EXPECT_TRUE(torch::all(params["layer1.0.bn1.weight"] == 1).item<bool>());
  EXPECT_TRUE(torch::all(params["bn_final.bias"] == 0).item<bool>());
  const double bound = 1.0 / std::sqrt(864.0);
  EXPECT_LE(max_abs(params["fc.weight"]), bound);
  EXPECT_GT(max_abs(params["fc.weight"]), 0.95 * bound);
  EXPECT_LE(max_abs(params["fc.bias"]), bound);
  EXPECT_GT(max_abs(params["fc.bias"]), 0.0);
}

// nfnets.py: WSConv2D xavier_normal_ with Conv2d's default bias and gain 1; the SE Linears
// torch's default; the classifier N(0, 0.01) with the default bias; skip gains 0.
TEST(ModelsExtraTest, NFNetInitializesAsTheReference) {
  auto model = make_model(spec_of("nfnet", 64), 4);
  auto params = model->named_parameters();
  // body.3.conv2: 1x1 from 768 to 1536 channels; xavier std sqrt(2 / (768 + 1536)).
  auto w = params["body.3.conv2.weight"];
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{1536, 768, 1, 1}));
  EXPECT_NEAR(std_of(w), std::sqrt(2.0 / 2304), 0.02 * std::sqrt(2.0 / 2304));
  // body.3.conv1: grouped 3x3 (6 groups of 128): fan_in 128 * 9, fan_out 768 * 9.
  auto g = params["body.3.conv1.weight"];
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{768, 128, 3, 3}));
  EXPECT_NEAR(std_of(g), std::sqrt(2.0 / (1152 + 6912)), 0.02 * std::sqrt(2.0 / 8064));
  const double conv_bound = 1.0 / std::sqrt(1152.0);
  EXPECT_LE(max_abs(params["body.3.conv1.bias"]), conv_bound);
  EXPECT_GT(max_abs(params["body.3.conv1.bias"]), 0.9 * conv_bound);
  auto se = params["body.3.squeeze_excite.linear.weight"];  // [768, 1536]
  const double se_bound = 1.0 / std::sqrt(1536.0);
  EXPECT_LE(max_abs(se), se_bound);
  EXPECT_NEAR(std_of(se), se_bound / std::sqrt(3.0), 0.02 * se_bound);
  EXPECT_NEAR(std_of(params["linear.weight"]), 0.01, 0.0005);
  const double head_bound = 1.0 / std::sqrt(3072.0);
  EXPECT_LE(max_abs(params["linear.bias"]), head_bound);
  EXPECT_GT(max_abs(params["linear.bias"]), 0.0);
  int gains = 0, skip_gains = 0;
  for (const auto& p : params) {
    if (ends_with(p.key(), ".gain")) {
      EXPECT_TRUE(torch::all(p.value() == 1).item<bool>()) << p.key();
      ++gains;
    } else if (ends_with(p.key(), ".skip_gain")) {
      EXPECT_EQ(p.value().dim(), 0) << p.key();
      EXPECT_EQ(p.value().item<double>(), 0.0) << p.key();
      ++skip_gains;
    }
  }
  // 4 stem convs, 4 per block plus 4 shortcuts (blocks 0, 1, 3, 9), the final conv.
  EXPECT_EQ(gains, 4 + 4 * 12 + 4 + 1);
  EXPECT_EQ(skip_gains, 12);
  EXPECT_TRUE(model->named_buffers().is_empty()) << "NFNet has no normalization layer";
}

TEST(ModelsExtraTest, LinearIsTheReferencesFirst100ValuesModel) {
  auto model = make_model(spec_of("linear", 64, 3, 10), 5);
  auto params = model->named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params["2.weight"].sizes(), (std::vector<int64_t>{10, 100}));
  EXPECT_LE(max_abs(params["2.weight"]), 0.1);  // torch's default: U(+-1/sqrt(100))
  EXPECT_LE(max_abs(params["2.bias"]), 0.1);
  // Only the first 100 flattened values reach the logits.
  auto x = torch::randn({2, 3, 32, 32});
  auto y = x.clone();
  y.view({2, -1}).narrow(1, 100, 3 * 32 * 32 - 100).normal_();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(y)));
  auto expected =
      torch::addmm(params["2.bias"], x.flatten(1).narrow(1, 0, 100), params["2.weight"].t());
  EXPECT_TRUE(torch::allclose(model->forward(x), expected, 1e-5, 1e-6));
  EXPECT_THROW(model->forward(torch::randn({2, 1, 5, 5})), UserError);  // 25 values < 100
}

// DenseNet-161/169/201: every parameter's name, shape and position equal those of the script's
// plain-torch construction (python3 scripts/reference_param_counts.py --names NAME).
TEST(ModelsExtraTest, DenseNetNamesAndShapesMatchThePythonConstruction) {
  FULLBATCH_REQUIRE_PYTHON_TORCH("scripts/reference_param_counts.py cannot run");
  for (const std::string name : {"densenet161", "densenet169", "densenet201"}) {
    SCOPED_TRACE(name);
    std::string python;
    ASSERT_EQ(
        testing::run_command("/usr/bin/python3 " + std::string(FULLBATCH_SOURCE_DIR) +
                                 "/scripts/reference_param_counts.py --width 8 --names " + name,
                             &python),
        0)
        << python;
    std::string ours;
    for (const auto& p : make_model(spec_of(name, 8), 0)->named_parameters()) {
      std::string shape;
      for (int64_t d : p.value().sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      ours += p.key() + " " + shape + "\n";
    }
    EXPECT_EQ(ours, python);
  }
}

// Names, shapes and order follow the reference's state dict (checked against the reference's
// classes with scripts/reference_param_counts.py's statement of them).
TEST(ModelsExtraTest, ParameterNamesFollowTheReference) {
  auto nf = make_model(spec_of("nfnet", 64), 0)->named_parameters();
  EXPECT_EQ(nf.keys()[0], "stem.conv0.weight");
  EXPECT_EQ(nf.keys()[2], "stem.conv0.gain");
  EXPECT_EQ(nf.keys()[12], "body.0.skip_gain");  // a module's own parameters come first
  EXPECT_EQ(nf.keys()[13], "body.0.conv0.weight");
  EXPECT_EQ(nf["body.0.conv_shortcut.weight"].sizes(), (std::vector<int64_t>{256, 128, 1, 1}));
  EXPECT_EQ(nf["body.1.conv1.weight"].sizes(), (std::vector<int64_t>{256, 128, 3, 3}));
  EXPECT_EQ(nf["body.1.conv1b.gain"].sizes(), (std::vector<int64_t>{256, 1, 1, 1}));
  EXPECT_EQ(nf["body.1.squeeze_excite.linear.weight"].sizes(), (std::vector<int64_t>{256, 512}));
  EXPECT_EQ(nf["body.1.squeeze_excite.linear_1.bias"].sizes(), (std::vector<int64_t>{512}));
  EXPECT_FALSE(nf.contains("body.2.conv_shortcut.weight"));  // 512 -> 512 at stride 1
  EXPECT_EQ(nf["final_conv.weight"].sizes(), (std::vector<int64_t>{3072, 1536, 1, 1}));
  EXPECT_EQ(nf["linear.weight"].sizes(), (std::vector<int64_t>{10, 3072}));

  auto p110 = make_model(spec_of("pyramidnet110", 64), 0)->named_parameters();
  EXPECT_EQ(p110["layer1.0.conv1.weight"].sizes(), (std::vector<int64_t>{18, 16, 3, 3}));
  EXPECT_EQ(p110["layer2.0.conv1.weight"].sizes(), (std::vector<int64_t>{46, 44, 3, 3}));
  EXPECT_EQ(p110["layer3.0.conv1.weight"].sizes(), (std::vector<int64_t>{74, 72, 3, 3}));
  EXPECT_EQ(p110["layer3.17.conv1.weight"].sizes(), (std::vector<int64_t>{100, 98, 3, 3}));
  EXPECT_TRUE(p110.contains("layer3.17.bn3.weight"));
  EXPECT_FALSE(p110.contains("layer3.17.bn4.weight"));
  EXPECT_EQ(p110["fc.weight"].sizes(), (std::vector<int64_t>{10, 100}));

  auto p272 = make_model(spec_of("pyramidnet272", 64), 0)->named_parameters();
  EXPECT_EQ(p272["layer1.0.conv1.weight"].sizes(), (std::vector<int64_t>{18, 16, 1, 1}));
  EXPECT_EQ(p272["layer2.0.conv1.weight"].sizes(), (std::vector<int64_t>{85, 332, 1, 1}));
  EXPECT_EQ(p272["layer3.0.conv1.weight"].sizes(), (std::vector<int64_t>{152, 596, 1, 1}));
  EXPECT_EQ(p272["layer3.29.conv3.weight"].sizes(), (std::vector<int64_t>{864, 216, 1, 1}));
  EXPECT_TRUE(p272.contains("layer3.29.bn4.weight"));
  EXPECT_EQ(p272["bn_final.weight"].sizes(), (std::vector<int64_t>{864}));
  EXPECT_EQ(p272["fc.weight"].sizes(), (std::vector<int64_t>{10, 864}));
}

TEST(ModelsExtraTest, PyramidNetZeroInitResidualZeroesTheLastBatchNorm) {
  for (const std::string name : {"pyramidnet110", "pyramidnet272"}) {
    SCOPED_TRACE(name);
    const std::string last = name == "pyramidnet272" ? ".bn4.weight" : ".bn3.weight";
    auto spec = spec_of(name, 8);
    auto off = make_model(spec, 6)->named_parameters();
    spec.zero_init_residual = true;
    auto on = make_model(spec, 6)->named_parameters();
    int zeroed = 0;
    for (const auto& p : on) {
      if (p.key().rfind("layer", 0) == 0 && ends_with(p.key(), last)) {
        EXPECT_TRUE(torch::all(p.value() == 0).item<bool>()) << p.key();
        ++zeroed;
      } else {
        EXPECT_TRUE(torch::equal(p.value(), off[p.key()])) << p.key();
      }
    }
    EXPECT_EQ(zeroed, name == "pyramidnet272" ? 90 : 54);
  }
}

TEST(ModelsExtraTest, TooNarrowWidthsThrowUserError) {
  for (const std::string name : {"pyramidnet110", "pyramidnet272", "nfnet"}) {
    SCOPED_TRACE(name);
    try {
      make_model(spec_of(name, 3), 0);
      FAIL() << "expected UserError";
    } catch (const UserError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("model.width"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_NO_THROW(make_model(spec_of(name, 4), 0));
  }
  EXPECT_NO_THROW(make_model(spec_of("linear", 1), 0));  // linear has no width
}

// ---- NFNet's scaled weight-standardized convolution, by hand --------------------------------

// The formula of the reference's WSConv2D, in doubles: per output channel o,
// w_hat = (w - mean) / sqrt(max(var * fan_in, 1e-4)) * gain[o], var the unbiased variance.
std::vector<double> standardize(const std::vector<double>& w, int64_t out, int64_t fan_in,
                                const std::vector<double>& gain) {
  std::vector<double> result(w.size());
  for (int64_t o = 0; o < out; ++o) {
    double mean = 0, ss = 0;
    for (int64_t i = 0; i < fan_in; ++i) mean += w[o * fan_in + i];
    mean /= static_cast<double>(fan_in);
    for (int64_t i = 0; i < fan_in; ++i) ss += std::pow(w[o * fan_in + i] - mean, 2);
    const double var = ss / static_cast<double>(fan_in - 1);
    const double scale = 1.0 / std::sqrt(std::max(var * static_cast<double>(fan_in), 1e-4));
    for (int64_t i = 0; i < fan_in; ++i)
      result[o * fan_in + i] = (w[o * fan_in + i] - mean) * scale * gain[o];
  }
  return result;
}

struct ConvCase {
  int64_t in, out, kernel, stride, padding, groups, size;
};

void check_ws_conv(const ConvCase& c) {
  const int64_t in_per_group = c.in / c.groups, out_per_group = c.out / c.groups;
  const int64_t fan_in = in_per_group * c.kernel * c.kernel;
  std::vector<double> x(c.in * c.size * c.size), w(c.out * fan_in), bias(c.out), gain(c.out);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * static_cast<double>(i) + 0.3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(1.3 * static_cast<double>(i * i) + 0.1);
  for (int64_t i = 0; i < fan_in; ++i) w[i] = 0.25;  // a constant filter: var 0, the eps floor
  for (int64_t o = 0; o < c.out; ++o) {
    bias[o] = 0.1 * static_cast<double>(o) - 0.2;
    gain[o] = 0.5 + 0.25 * static_cast<double>(o);
  }
  const std::vector<double> w_hat = standardize(w, c.out, fan_in, gain);
  const int64_t out_size = (c.size + 2 * c.padding - c.kernel) / c.stride + 1;
  std::vector<double> expected(c.out * out_size * out_size);
  for (int64_t o = 0; o < c.out; ++o) {
    const int64_t group = o / out_per_group;
    for (int64_t r = 0; r < out_size; ++r) {
      for (int64_t q = 0; q < out_size; ++q) {
        double sum = bias[o];
        for (int64_t ci = 0; ci < in_per_group; ++ci) {
          for (int64_t kr = 0; kr < c.kernel; ++kr) {
            for (int64_t kq = 0; kq < c.kernel; ++kq) {
              const int64_t row = r * c.stride - c.padding + kr;
              const int64_t col = q * c.stride - c.padding + kq;
              if (row < 0 || row >= c.size || col < 0 || col >= c.size) continue;
              const int64_t channel = group * in_per_group + ci;
              sum += w_hat[((o * in_per_group + ci) * c.kernel + kr) * c.kernel + kq] *
                     x[(channel * c.size + row) * c.size + col];
            }
          }
        }
        expected[(o * out_size + r) * out_size + q] = sum;
      }
    }
  }
  auto to_tensor = [](const std::vector<double>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kFloat64).to(torch::kFloat32).reshape(shape);
  };
  auto got = detail::ws_conv2d(to_tensor(x, {1, c.in, c.size, c.size}),
                               to_tensor(w, {c.out, in_per_group, c.kernel, c.kernel}),
                               to_tensor(bias, {c.out}), to_tensor(gain, {c.out, 1, 1, 1}),
                               c.stride, c.padding, c.groups);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{1, c.out, out_size, out_size}));
  auto want = to_tensor(expected, {1, c.out, out_size, out_size});
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max().item<double>();
  // The constant filter standardizes to 0: its channel is the bias.
  EXPECT_TRUE(
      torch::allclose(got[0][0], torch::full({out_size, out_size}, bias[0]).to(torch::kFloat32)));
}

TEST(ModelsExtraTest, WeightStandardizedConvMatchesTheFormulaByHand) {
  check_ws_conv({2, 3, 2, 1, 0, 1, 3});  // 2 -> 3 channels, 2x2, no padding
  check_ws_conv({2, 2, 3, 2, 1, 1, 5});  // 3x3, stride 2, padding 1
  check_ws_conv({4, 4, 3, 1, 1, 2, 4});  // 2 groups
}

// Every NFNet convolution is standardized: scaling a filter or shifting it by a constant changes
// no logit (with the skip gains set to 1, so every branch reaches the output).
TEST(ModelsExtraTest, NFNetLogitsIgnoreEachFiltersScaleAndMean) {
  auto model = make_model(spec_of("nfnet", 8), 7);
  model->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (ends_with(p.key(), "skip_gain")) p.value().fill_(1.0);
  }
  auto x = torch::randn({2, 3, 32, 32});
  auto before = model->forward(x);
  int convs = 0;
  for (auto& p : model->named_parameters()) {
    const auto& key = p.key();
    if (!ends_with(key, ".weight") || p.value().dim() != 4) continue;
    auto w = p.value();
    auto per_filter = torch::linspace(0.5, 3.0, w.size(0)).view({-1, 1, 1, 1});
    w.mul_(per_filter).add_(per_filter - 1.0);
    ++convs;
  }
  EXPECT_EQ(convs, 4 + 4 * 12 + 4 + 1);
  auto after = model->forward(x);
  EXPECT_TRUE(torch::allclose(before, after, 1e-4, 1e-5))
      << (before - after).abs().max().item<double>();
}

}  // namespace
}  // namespace fullbatch
