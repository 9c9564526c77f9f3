#include "fullbatch/models/reference_weights.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/models/model.h"
#include "fullbatch/models/weights.h"
#include "model_spec.h"
#include "test_util.h"

namespace fullbatch {
namespace {

using testing::run_command;
using testing::spec_of;
using testing::TempDir;

const std::string kCli = FULLBATCH_CLI_PATH;
const std::string kScript =
    std::string(FULLBATCH_SOURCE_DIR) + "/scripts/make_reference_checkpoint.py";

// The message of the UserError `f` throws; a test failure when it throws none.
template <typename F>
std::string user_error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UserError";
  return "";
}

void expect_one_line_naming(const std::string& message, const std::vector<std::string>& parts) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const auto& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

std::vector<std::string> names_of(const std::map<std::string, torch::Tensor>& state) {
  std::vector<std::string> names;
  for (const auto& entry : state) names.push_back(entry.first);
  return names;
}

// Same names, dtypes, shapes and values (torch::equal compares every dtype on the CPU).
void expect_same_tensors(const std::map<std::string, torch::Tensor>& got,
                         const std::map<std::string, torch::Tensor>& want) {
  ASSERT_EQ(names_of(got), names_of(want));
  for (const auto& [name, tensor] : want) {
    SCOPED_TRACE(name);
    ASSERT_EQ(got.at(name).scalar_type(), tensor.scalar_type());
    EXPECT_TRUE(torch::equal(got.at(name), tensor));
  }
}

// Our ResNet names as the reference's resnets.py names the same tensors (stem = Sequential(conv,
// BN, ReLU), layers.<stage>.<block>, downsample = Sequential(AvgPool2d, conv, BN)), written here
// from the reference's module layout rather than taken from the library's mapping.
std::string reference_name_of(const std::string& ours) {
  static const std::regex kLayer(R"(^layer(\d+)\.(.*)$)");
  static const std::regex kShortcut(R"(\.shortcut\.)");
  std::smatch m;
  if (ours.rfind("conv1.", 0) == 0) return "stem.0." + ours.substr(6);
  if (ours.rfind("bn1.", 0) == 0) return "stem.1." + ours.substr(4);
  if (std::regex_match(ours, m, kLayer))
    return "layers." + std::to_string(std::stoi(m[1].str()) - 1) + "." +
           std::regex_replace(m[2].str(), kShortcut, ".downsample.");
  return ours;
}

std::map<std::string, torch::Tensor> as_reference(const torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, tensor] : state_dict(model))
    out[reference_name_of(name)] = tensor.clone();
  return out;
}

// ---- Hand-made torch.save archives -------------------------------------------------------------

// A zip archive as torch.save lays it out (<name>/data.pkl, <name>/data/<key>, <name>/version).
void write_archive(const std::string& path, const std::map<std::string, std::string>& records) {
  std::filesystem::remove(path);
  caffe2::serialize::PyTorchStreamWriter writer(path);
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

std::string pickle_text(const std::string& text) {  // BINUNICODE
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  return out + text;
}

std::string pickle_small_int(int value) {  // BININT1
  return std::string("K") + static_cast<char>(value);
}

// The pickle of torch.save's {name: tensor} entry: _rebuild_tensor_v2 of a contiguous view
// (sizes, offset) of the float storage record data/0 (4 elements), as SETITEMS content.
std::string tensor_entry(const std::string& name, const std::vector<int>& sizes, int offset) {
  std::string p = pickle_text(name) + "ctorch._utils\n_rebuild_tensor_v2\n((" +
                  pickle_text("storage") + "ctorch\nFloatStorage\n" + pickle_text("0") +
                  pickle_text("cpu") + pickle_small_int(4) + "tQ" + pickle_small_int(offset) + "(";
  for (int s : sizes) p += pickle_small_int(s);
  p += "t(";
  std::vector<int> strides(sizes.size());
  int stride = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= sizes[i];
  }
  for (int s : strides) p += pickle_small_int(s);
  return p + "t\x89)tR";
}

const std::string kProto = std::string("\x80\x02", 2);

std::string four_floats() {
  const float values[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  return std::string(reinterpret_cast<const char*>(values), sizeof(values));
}

// ---- The reader ------------------------------------------------------------------------------

TEST(ReferenceWeights, ReadsOurOwnWeightsFileAsAStateDict) {
  TempDir dir;
  ModelPtr model = make_model(spec_of("resnet18", 4), 3);
  save_weights(*model, dir / "model.pt");
  expect_same_tensors(read_reference_state_dict(dir / "model.pt"), state_dict(*model));

  // Every dtype, a 0-dim and an empty tensor, through LibTorch's torch.save-compatible pickler.
  std::map<std::string, torch::Tensor> mixed = {{"f32", torch::randn({2, 3})},
                                                {"f64", torch::randn({3}, torch::kFloat64)},
                                                {"f16", torch::randn({2}).to(torch::kFloat16)},
                                                {"bf16", torch::randn({2}).to(torch::kBFloat16)},
                                                {"i64", torch::arange(5)},
                                                {"i32", torch::arange(4).to(torch::kInt32)},
                                                {"u8", torch::arange(6).to(torch::kUInt8)},
                                                {"bool", torch::rand({5}) > 0.5},
                                                {"scalar", torch::full({}, 17, torch::kInt64)},
                                                {"empty", torch::zeros({0, 5})}};
  write_file_atomic(dir / "mixed.pt", pickle_state_dict(mixed));
  expect_same_tensors(read_reference_state_dict(dir / "mixed.pt"), mixed);
}

TEST(ReferenceWeights, StripsTheModulePrefixOnlyWhenEveryNameHasIt) {
  TempDir dir;
  const torch::Tensor a = torch::randn({3});
  const torch::Tensor b = torch::randn({2, 2});
  write_file_atomic(dir / "ddp.pth",
                    pickle_state_dict({{"module.conv1.weight", a}, {"module.fc.bias", b}}));
  expect_same_tensors(read_reference_state_dict(dir / "ddp.pth"),
                      {{"conv1.weight", a}, {"fc.bias", b}});
  write_file_atomic(dir / "mixed.pth",
                    pickle_state_dict({{"module.conv1.weight", a}, {"fc.bias", b}}));
  expect_same_tensors(read_reference_state_dict(dir / "mixed.pth"),
                      {{"module.conv1.weight", a}, {"fc.bias", b}});
}

// The training checkpoint's list, its state dict an OrderedDict with _metadata set by BUILD, its
// scheduler state holding a collections.Counter and its optimizer state plain dicts: what the
// reference's _save_to_checkpoint writes, without needing Python to write it.
TEST(ReferenceWeights, ReadsTheTrainingCheckpointsList) {
  TempDir dir;
  const std::string state_dict_pickle = "ccollections\nOrderedDict\n)R(" +
                                        tensor_entry("stem.0.weight", {2, 2}, 0) + "u}" +
                                        pickle_text("_metadata") + "}sb";
  const std::string optimizer = "}(" + pickle_text("state") + "}" + pickle_text("param_groups") +
                                "](}" + pickle_text("lr") + "G" + std::string(8, '\0') + "seu";
  const std::string scheduler = "}(" + pickle_text("milestones") + "ccollections\nCounter\n}\x85R" +
                                pickle_text("after_scheduler") +
                                "ctorch.optim.lr_scheduler\nMultiStepLR\n)\x81}bu";
  const std::string pickle =
      kProto + "](" + optimizer + state_dict_pickle + scheduler + "N" + pickle_small_int(7) + "e.";
  write_archive(dir / "checkpoint.pth", {{"data.pkl", pickle}, {"data/0", four_floats()}});
  const auto state = read_reference_state_dict(dir / "checkpoint.pth");
  ASSERT_EQ(names_of(state), std::vector<std::string>{"stem.0.weight"});
  EXPECT_TRUE(torch::equal(state.at("stem.0.weight"),
                           torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2})));

  // The visualization payload: dict(state_dict=..., model_cfg=<an object>, ...).
  const std::string payload = kProto + "}(" + pickle_text("state_dict") + state_dict_pickle +
                              pickle_text("model_cfg") + "ctypes\nSimpleNamespace\n)R}b" +
                              pickle_text("grads") + "]u.";
  write_archive(dir / "payload.pth", {{"data.pkl", payload}, {"data/0", four_floats()}});
  expect_same_tensors(read_reference_state_dict(dir / "payload.pth"), state);
}

TEST(ReferenceWeights, BadTensorRecordsAreOneLineUserErrorsNamingTheEntry) {
  TempDir dir;
  struct Case {
    std::string what;
    std::string pickle;
    bool with_data;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"view past the storage", kProto + "}(" + tensor_entry("w", {2, 2}, 1) + "u.", true,
       "'w' lies outside its storage"},
      {"view far past the storage", kProto + "}(" + tensor_entry("w", {4, 4, 4}, 0) + "u.", true,
       "'w' lies outside its storage"},
      {"no storage record", kProto + "}(" + tensor_entry("w", {2, 2}, 0) + "u.", false,
       "'w' refers to record data/0"},
      {"unknown tensor builder",
       kProto + "}(" + tensor_entry("a", {4}, 0) + pickle_text("w") +
           "ctorch._utils\n_rebuild_mystery\n)Ru.",
       true, "'w' holds torch._utils._rebuild_mystery"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::map<std::string, std::string> records = {{"data.pkl", c.pickle}};
    if (c.with_data) records["data/0"] = four_floats();
    write_archive(dir / "bad.pth", records);
    const std::string message = user_error_of([&] { read_reference_state_dict(dir / "bad.pth"); });
    expect_one_line_naming(message, {"reference checkpoint " + (dir / "bad.pth"), c.expected});
  }
  // An empty tensor needs no storage bytes at all.
  write_archive(dir / "empty.pth",
                {{"data.pkl", kProto + "}(" + tensor_entry("e", {0, 3}, 0) + "u."}});
  const auto empty = read_reference_state_dict(dir / "empty.pth");
  EXPECT_EQ(empty.at("e").dim(), 2);
  EXPECT_EQ(empty.at("e").size(1), 3);
  EXPECT_EQ(empty.at("e").numel(), 0);
}

TEST(ReferenceWeights, FilesThatAreNotCheckpointsAreOneLineUserErrorsNamingTheFile) {
  TempDir dir;
  const std::string good_pickle = kProto + "}(" + tensor_entry("w", {4}, 0) + "u.";
  // Lists nested 200000 deep: built and torn down without recursion (recursive destructors
  // would need tens of megabytes of stack).
  std::string deep = kProto;
  const int kDepth = 200000;
  deep += std::string(kDepth, ']') + std::string(kDepth - 1, 'a') + ".";
  struct Case {
    std::string what;
    std::map<std::string, std::string> records;  // empty: `raw` is the whole file
    std::string raw;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"empty file", {}, "", "not a PyTorch checkpoint"},
      {"text", {}, "this is not a checkpoint\n", "not a PyTorch checkpoint"},
      {"bare pickle", {}, kProto + "}.", "bare pickle"},
      {"zip without data.pkl", {{"other", "x"}}, "", "without data.pkl"},
      {"truncated pickle", {{"data.pkl", kProto + "}("}}, "", "damaged data.pkl"},
      {"unknown opcode", {{"data.pkl", kProto + "\xff."}}, "", "opcode 0xff"},
      {"memo never stored", {{"data.pkl", kProto + "h\x05."}}, "", "memo entry 5"},
      {"pop past a mark", {{"data.pkl", kProto + "N(0."}}, "", "damaged data.pkl"},
      {"length past the end",
       {{"data.pkl", kProto + "X\xff\xff\xff\x7f."}},
       "",
       "runs past the end"},
      {"a list of four",
       {{"data.pkl", kProto + "](NNNNe."}},
       "",
       "none of the reference's layouts"},
      {"a dict of ints",
       {{"data.pkl", kProto + "}(" + pickle_text("a") + "K\x01u."}},
       "",
       "none of the reference's layouts"},
      {"deeply nested", {{"data.pkl", deep}}, "", "none of the reference's layouts"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string path = dir / "file.pth";
    std::filesystem::remove(path);
    if (c.records.empty()) {
      write_file_atomic(path, c.raw);
    } else {
      write_archive(path, c.records);
    }
    const std::string message = user_error_of([&] { read_reference_state_dict(path); });
    expect_one_line_naming(message, {"reference checkpoint " + path + ": ", c.expected});
  }
  expect_one_line_naming(user_error_of([&] { read_reference_state_dict(dir / "missing.pth"); }),
                         {"reference checkpoint " + (dir / "missing.pth") + ": no such file"});

  // Every prefix of a good pickle, and the good archive cut short: errors, never crashes.
  for (size_t cut = 0; cut < good_pickle.size(); ++cut) {
    write_archive(dir / "cut.pth",
                  {{"data.pkl", good_pickle.substr(0, cut)}, {"data/0", four_floats()}});
    EXPECT_THROW(read_reference_state_dict(dir / "cut.pth"), UserError) << "pickle cut at " << cut;
  }
  write_archive(dir / "good.pth", {{"data.pkl", good_pickle}, {"data/0", four_floats()}});
  ASSERT_EQ(read_reference_state_dict(dir / "good.pth").size(), 1u);
  const std::string archive = read_file(dir / "good.pth");
  for (size_t cut = 0; cut < archive.size(); cut += 37) {
    std::filesystem::remove(dir / "short.pth");
    write_file_atomic(dir / "short.pth", archive.substr(0, cut));
    EXPECT_THROW(read_reference_state_dict(dir / "short.pth"), UserError)
        << "archive cut at " << cut;
  }
}

// ---- The name mapping --------------------------------------------------------------------------

TEST(ReferenceWeights, MapsTheReferenceNamesOntoOurs) {
  for (const auto& spec :
       {spec_of("resnet18", 4), spec_of("resnet50", 4), spec_of("resnet20", 4)}) {
    SCOPED_TRACE(spec.name);
    ModelPtr model = make_model(spec, 1);
    const auto reference = as_reference(*model);
    for (const char* name :
         {"stem.0.weight", "stem.1.running_var", "layers.1.0.downsample.1.weight",
          "layers.1.0.downsample.2.num_batches_tracked", "fc.bias"})
      EXPECT_EQ(reference.count(name), 1u) << name;
    expect_same_tensors(map_reference_names(spec.name, reference, *model, "f.pth"),
                        state_dict(*model));
  }
  // VGG and DenseNet name their tensors as we do.
  for (const auto& spec : {spec_of("vgg11", 8), spec_of("densenet121", 8)}) {
    SCOPED_TRACE(spec.name);
    ModelPtr model = make_model(spec, 1);
    expect_same_tensors(map_reference_names(spec.name, state_dict(*model), *model, "f.pth"),
                        state_dict(*model));
  }
}

TEST(ReferenceWeights, LoadsAReferenceNamedFileIntoAFreshModel) {
  TempDir dir;
  ModelPtr source = make_model(spec_of("resnet18", 4), 1);
  write_file_atomic(dir / "ref.pth", pickle_state_dict(as_reference(*source)));
  ModelPtr model = make_model(spec_of("resnet18", 4), 2);
  load_reference_weights(*model, "resnet18", dir / "ref.pth");
  expect_same_tensors(state_dict(*model), state_dict(*source));
}

TEST(ReferenceWeights, MisshapenMissingAndExtraEntriesAreOneLineUserErrors) {
  ModelPtr model = make_model(spec_of("resnet18", 4), 1);
  const auto good = as_reference(*model);
  const std::string origin = "reference checkpoint x.pth";
  auto error_of = [&](const std::map<std::string, torch::Tensor>& reference,
                      const std::string& name = "resnet18") {
    return user_error_of([&] { map_reference_names(name, reference, *model, origin); });
  };

  auto misshapen = good;
  misshapen["fc.weight"] = torch::zeros({11, 32});
  expect_one_line_naming(error_of(misshapen),
                         {origin + ": ", "'fc.weight'", "[11, 32]", "[10, 32]"});

  auto missing = good;
  missing.erase("layers.3.1.bn2.running_var");
  expect_one_line_naming(error_of(missing), {origin + ": ", "'layer4.1.bn2.running_var'",
                                             "closest entry in the file: 'layers."});

  auto extra = good;
  extra["layers.3.1.bn3.weight"] = torch::ones({32});
  expect_one_line_naming(error_of(extra),
                         {origin + ": ", "'layers.3.1.bn3.weight'", "read as 'layer4.1.bn3.weight'",
                          "closest model tensor: 'layer4.1.bn"});

  auto twice = good;
  twice["conv1.weight"] = good.at("stem.0.weight");
  expect_one_line_naming(error_of(twice), {origin + ": ", "'conv1.weight'", "'stem.0.weight'"});

  expect_one_line_naming(error_of(good, "simplecnn"), {origin + ": ", "'simplecnn'", "resnet*"});
  // Another width: the first tensor compared names the entry and both shapes.
  ModelPtr wider = make_model(spec_of("resnet18", 8), 1);
  expect_one_line_naming(
      user_error_of([&] { map_reference_names("resnet18", good, *wider, origin); }),
      {origin + ": ", "has shape [4]", "expects [8]"});
}

// ---- Checkpoints written by Python, as the reference writes them -------------------------------

#define REQUIRE_PYTHON_TORCH() \
  FULLBATCH_REQUIRE_PYTHON_TORCH("scripts/make_reference_checkpoint.py cannot write the reference's files")

void make_reference_checkpoint(const std::string& model, int64_t width, const std::string& dir,
                               int64_t in_channels = 3) {
  std::string out;
  const int rc = run_command("OMP_NUM_THREADS=1 /usr/bin/python3 " + kScript + " --model " + model +
                                 " --width " + std::to_string(width) + " --in-channels " +
                                 std::to_string(in_channels) + " --out-dir " + dir,
                             &out);
  ASSERT_EQ(rc, 0) << out;
}

// Our model's eval-mode logits on the script's input, with the file's weights loaded.
void expect_reference_logits(const ModelSpec& spec, const std::string& file,
                             const std::string& expected_file) {
  const auto expected = unpickle_state_dict(read_file(expected_file), expected_file);
  ModelPtr model = make_model(spec, 1);
  load_reference_weights(*model, spec.name, file);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(expected.at("input"));
  ASSERT_EQ(logits.sizes(), expected.at("logits").sizes());
  EXPECT_LE((logits - expected.at("logits")).abs().max().item<double>(), 1e-4);
}

TEST(ReferenceCheckpoints, ResNet18GivesTheReferenceLogitsFromEveryLayout) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(make_reference_checkpoint("resnet18", 4, dir.path()));
  const auto baseline = read_reference_state_dict(dir / "state_dict.pth");
  EXPECT_EQ(baseline.count("stem.0.weight"), 1u);
  EXPECT_EQ(baseline.count("layers.3.0.downsample.1.weight"), 1u);
  for (const char* file : {"checkpoint.pth", "state_dict.pth", "ddp.pth", "payload.pth"}) {
    SCOPED_TRACE(file);
    expect_same_tensors(read_reference_state_dict(dir / file), baseline);
    expect_reference_logits(spec_of("resnet18", 4), dir / file, dir / "expected.pt");
  }
}

TEST(ReferenceCheckpoints, OtherArchitecturesGiveTheReferenceLogits) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  for (const auto& spec : {spec_of("resnet20", 4), spec_of("resnet50", 4), spec_of("vgg11", 8),
                           spec_of("densenet121", 8)}) {
    SCOPED_TRACE(spec.name);
    const std::string out = dir / spec.name;
    ASSERT_NO_FATAL_FAILURE(make_reference_checkpoint(spec.name, spec.width, out));
    expect_reference_logits(spec, out + "/checkpoint.pth", out + "/expected.pt");
  }
}

TEST(ReferenceCheckpoints, EvalReadsOneWithTheReferenceFlag) {
  REQUIRE_PYTHON_TORCH();
  FULLBATCH_REQUIRE_FASHION_MNIST();
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(make_reference_checkpoint("resnet18", 4, dir.path(), 1));
  const std::string eval = kCli + " eval --checkpoint " + (dir / "checkpoint.pth") +
                           " --reference data.name=fashion-mnist data.test_size=64"
                           " impl.threads=1 impl.progress=false model.name=resnet18";
  std::string out;
  ASSERT_EQ(run_command(eval + " model.width=4", &out), 0) << out;
  const auto result = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(result["test_images"].get<int64_t>(), 64);
  EXPECT_GE(result["val_accuracy"].get<double>(), 0.0);

  // Another model.width: a one-line error naming the file and an entry, exit code 2.
  EXPECT_EQ(run_command(eval + " model.width=8", &out), 2) << out;
  const size_t at = out.find("reference checkpoint " + (dir / "checkpoint.pth") + ": ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_NE(out.substr(at, out.find('\n', at) - at).find("has shape"), std::string::npos) << out;
}

}  // namespace
}  // namespace fullbatch
