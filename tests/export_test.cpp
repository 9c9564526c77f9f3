#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/config.h"
#include "fullbatch/models/model.h"
#include "fullbatch/models/safetensors.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/run/checkpoint.h"
#include "model_spec.h"
#include "test_util.h"

namespace fullbatch {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::TempDir;

const std::string kCli = FULLBATCH_CLI_PATH;
const std::string kScript = std::string(FULLBATCH_SOURCE_DIR) + "/scripts/export_model.py";

using testing::spec_of;

// A tensor's bytes as they lie in memory: "bit-equal" for NaN, -0.0 and every dtype alike.
std::string bytes_of(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  if (c.numel() == 0) return "";
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

void expect_same_tensors(const std::map<std::string, torch::Tensor>& got,
                         const std::map<std::string, torch::Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, expected] : want) {
    SCOPED_TRACE(name);
    auto it = got.find(name);
    ASSERT_NE(it, got.end());
    EXPECT_EQ(it->second.scalar_type(), expected.scalar_type());
    EXPECT_EQ(it->second.sizes(), expected.sizes());
    EXPECT_EQ(bytes_of(it->second), bytes_of(expected));
  }
}

uint64_t u64_le(const std::string& bytes, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// A file with this header text and data section, the header length in front.
std::string framed(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

// ---- the format ------------------------------------------------------------------------------

TEST(Safetensors, RoundTripsEveryDtypeAndShapeBitForBit) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::map<std::string, torch::Tensor> state;
  state["f32"] = torch::randn({2, 3});
  state["f32.special"] = torch::tensor({0.0f, -0.0f, inf, -inf, nan, 1e-45f, 3.4e38f});
  state["f32.transposed"] = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();  // not contiguous
  state["f32.empty"] = torch::zeros({0, 5});
  state["f64"] = torch::randn({4}, torch::kFloat64);
  state["f16"] = torch::randn({3, 2}).to(torch::kFloat16);
  state["bf16"] = torch::randn({5}).to(torch::kBFloat16);
  state["i64.scalar"] = torch::full({}, int64_t{-1234567890123}, torch::kInt64);
  state["i32"] = torch::randint(-1000, 1000, {2, 2, 2}, torch::TensorOptions().dtype(torch::kInt32));
  state["i16"] = torch::arange(-3, 3).to(torch::kInt16);
  state["i8"] = torch::arange(-128, 128, 51).to(torch::kInt8);
  state["u8"] = torch::arange(0, 256, 37).to(torch::kUInt8);
  state["u8.empty"] = torch::zeros({0}, torch::kUInt8);
  state["bool"] = torch::rand({2, 3}) > 0.5;
  state["f32.scalar"] = torch::full({}, 2.5f);
  state["f32.5d"] = torch::randn({1, 2, 1, 3, 2});

  std::map<std::string, std::string> meta_in = {{"format", "pt"}, {"note", "line one\nline two"}};
  std::map<std::string, std::string> meta_out;
  const auto decoded = decode_safetensors(encode_safetensors(state, meta_in), "round trip", &meta_out);
  expect_same_tensors(decoded, state);
  EXPECT_EQ(meta_out, meta_in);
  // Decoded tensors own their memory: contiguous, on the CPU.
  EXPECT_TRUE(decoded.at("f32.transposed").is_contiguous());
  EXPECT_TRUE(torch::equal(decoded.at("f32.transposed"), state["f32.transposed"]));

  // Nothing at all is a valid file too.
  EXPECT_TRUE(decode_safetensors(encode_safetensors({}), "empty").empty());
}

TEST(Safetensors, HeaderFollowsTheFormat) {
  std::map<std::string, torch::Tensor> state;
  state["b"] = torch::tensor({1.0f, 2.0f});
  state["a"] = torch::full({}, 7, torch::kInt64);
  const std::string bytes = encode_safetensors(state, {{"format", "pt"}});

  ASSERT_GE(bytes.size(), 8u);
  const uint64_t n = u64_le(bytes, 0);
  EXPECT_EQ(n % 8, 0u) << "the data section starts 8-byte aligned";
  ASSERT_EQ(bytes.size(), 8 + n + 8 + 8);  // I64 scalar + two F32
  const std::string header_text = bytes.substr(8, n);
  const size_t last = header_text.find_last_not_of(' ');
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(header_text[last], '}') << "only spaces pad the header";
  auto header = nlohmann::json::parse(header_text);
  EXPECT_EQ(header["__metadata__"], nlohmann::json::object({{"format", "pt"}}));
  EXPECT_EQ(header["a"]["dtype"], "I64");
  EXPECT_EQ(header["a"]["shape"], nlohmann::json::array());
  EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json::array({0, 8}));
  EXPECT_EQ(header["b"]["dtype"], "F32");
  EXPECT_EQ(header["b"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json::array({8, 16}));
  // Data in name order, little-endian, offsets relative to the data section.
  EXPECT_EQ(bytes.substr(8 + n, 8), std::string("\x07\0\0\0\0\0\0\0", 8));
  float b[2];
  std::memcpy(b, bytes.data() + 8 + n + 8, sizeof(b));
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], 2.0f);

  // The exact bytes of a one-tensor file; no "__metadata__" without metadata.
  std::string json = R"({"x":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(encode_safetensors({{"x", torch::tensor({1.0f})}}),
            framed(json, std::string("\x00\x00\x80\x3f", 4)));
}

TEST(Safetensors, UnsupportedTensorsAreUserErrorsNamingThem) {
  for (const auto& [name, tensor] :
       std::map<std::string, torch::Tensor>{{"weights.complex", torch::zeros({2}, torch::kComplexFloat)},
                                            {"weights.sparse", torch::eye(3).to_sparse()}}) {
    try {
      encode_safetensors({{name, tensor}});
      ADD_FAILURE() << "accepted " << name;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(encode_safetensors({{"__metadata__", torch::zeros({1})}}), UserError);
}

TEST(Safetensors, DamagedFilesAreOneLineUserErrorsNamingTheFile) {
  const std::string good = encode_safetensors({{"a", torch::randn({4})}, {"b", torch::randn({2, 2})}});
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  struct Case {
    std::string what;
    std::string bytes;
    std::string expected;  // in the message
  };
  const std::vector<Case> cases = {
      {"empty file", "", "fewer than the 8-byte header length"},
      {"five bytes", std::string("\x10\0\0\0\0", 5), "fewer than the 8-byte header length"},
      {"cut inside the header", good.substr(0, 20), "runs past the end of the file"},
      {"cut inside the data", good.substr(0, good.size() - 1), "run past the end of the data section"},
      {"header length far too large", framed("{}", "").replace(7, 1, "\x7f"), "runs past the end"},
      {"not JSON", framed("{not json}", ""), "not valid JSON"},
      {"header an array", framed("[1, 2]", ""), "does not start with '{'"},
      {"entry not an object", framed(R"({"a": 3})", ""), "not a JSON object"},
      {"no dtype", framed(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')), "dtype"},
      {"unknown dtype", framed(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
       "\"C64\" is not supported"},
      {"negative dimension", framed(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')),
       "non-negative integer"},
      {"fractional dimension", framed(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", std::string(4, '\0')),
       "non-negative integer"},
      {"huge shape", framed(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", ""),
       "too large"},
      {"offsets not a pair", framed("{\"a\":{" + f32x2 + R"(,"data_offsets":[0]}})", std::string(8, '\0')),
       "not a pair"},
      {"offsets backwards", framed("{\"a\":{" + f32x2 + R"(,"data_offsets":[8,0]}})", std::string(8, '\0')),
       "end before they begin"},
      {"offsets past the end", framed("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,16]}})", std::string(8, '\0')),
       "run past the end of the data section"},
      {"size not the shape's", framed(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
       "needs 12"},
      {"overlap",
       framed("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 + R"(,"data_offsets":[4,12]}})",
              std::string(12, '\0')),
       "overlap"},
      {"gap",
       framed(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
              std::string(12, '\0')),
       "belong to no tensor"},
      {"bytes after the last tensor", framed(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(8, '\0')),
       "after the last tensor"},
      {"metadata not strings", framed(R"({"__metadata__":{"k":1}})", ""), "metadata entry \"k\""},
      {"BOOL byte 2", framed(R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x02", 2)),
       "not 0 or 1"},
      {"name with a newline", framed(R"({"a\nb": 3})", ""), "a\\nb"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    try {
      decode_safetensors(c.bytes, "file broken.safetensors");
      ADD_FAILURE() << "accepted a damaged file";
    } catch (const UserError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("file broken.safetensors: ", 0), 0u) << msg;
      EXPECT_NE(msg.find(c.expected), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  // Every prefix of a good file is refused, never a crash.
  for (size_t cut = 0; cut < good.size(); ++cut) EXPECT_THROW(decode_safetensors(good.substr(0, cut), "prefix"), UserError);
}

TEST(Safetensors, SavedModelDecodesToItsStateDict) {
  TempDir dir;
  for (const auto& spec : {spec_of("simplecnn", 4, 1, 10), spec_of("resnet18", 4, 3, 10)}) {
    SCOPED_TRACE(spec.name);
    ModelPtr model = make_model(spec, 5);
    const std::string path = dir / (spec.name + ".safetensors");
    save_safetensors(*model, path, {{"model.name", spec.name}});
    std::map<std::string, std::string> metadata;
    expect_same_tensors(load_safetensors(path, &metadata), state_dict(*model));
    EXPECT_EQ(metadata.at("model.name"), spec.name);
    // And it loads back into a fresh model of the same spec.
    ModelPtr other = make_model(spec, 6);
    load_state_dict(*other, load_safetensors(path), path);
    expect_same_tensors(state_dict(*other), state_dict(*model));
  }
  EXPECT_THROW(load_safetensors(dir / "missing.safetensors"), UserError);
}

// ---- TorchScript / ONNX through scripts/export_model.py (Debian's python3-torch) --------------

#define REQUIRE_PYTHON_TORCH() FULLBATCH_REQUIRE_PYTHON_TORCH("scripts/export_model.py cannot run")

// A model as training leaves it: BatchNorm with statistics, affine weights and biases away from
// their initial values, so the export must carry every buffer and eval mode must use them.
ModelPtr trained_looking_model(const ModelSpec& spec) {
  ModelPtr model = make_model(spec, 11);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_buffers()) {
    const std::string& name = item.key();
    if (name.find("running_mean") != std::string::npos) item.value().normal_(0.0, 0.5);
    if (name.find("running_var") != std::string::npos) item.value().uniform_(0.5, 2.0);
    if (name.find("num_batches_tracked") != std::string::npos) item.value().fill_(17);
  }
  for (auto& item : model->named_parameters())
    if (item.value().dim() == 1) item.value().normal_(0.0, 0.3);
  model->eval();
  return model;
}

// The logits our C++ model gives on `input`, and the input written where Python's torch.load
// reads it.
torch::Tensor our_logits(Classifier& model, const torch::Tensor& input, const std::string& input_path) {
  write_file_atomic(input_path, pickle_state_dict({{"input", input}}));
  torch::NoGradGuard no_grad;
  model.eval();
  return model.forward(input);
}

struct ScriptRun {
  int rc = -1;
  std::string output;
  nlohmann::json result;  // the JSON line of --print-logits, null when there is none
};

ScriptRun run_export_script(const std::string& args) {
  ScriptRun r;
  r.rc = run_command("OMP_NUM_THREADS=1 /usr/bin/python3 " + kScript + " " + args, &r.output);
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') r.result = nlohmann::json::parse(line, nullptr, false);
  return r;
}

void expect_logits_near(const nlohmann::json& rows, const torch::Tensor& expected, double tolerance) {
  ASSERT_TRUE(rows.is_array()) << rows.dump();
  ASSERT_EQ(rows.size(), static_cast<size_t>(expected.size(0)));
  for (int64_t i = 0; i < expected.size(0); ++i) {
    const nlohmann::json& row = rows.at(static_cast<size_t>(i));
    ASSERT_EQ(row.size(), static_cast<size_t>(expected.size(1)));
    for (int64_t j = 0; j < expected.size(1); ++j)
      EXPECT_NEAR(row.at(static_cast<size_t>(j)).get<double>(), expected[i][j].item<double>(), tolerance)
          << "logit [" << i << ", " << j << "]";
  }
}

// The TorchScript file loads in LibTorch and gives our model's logits.
void expect_torchscript_logits(const std::string& path, const torch::Tensor& input, const torch::Tensor& expected) {
  torch::jit::Module scripted = torch::jit::load(path);
  scripted.eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::jit::IValue> inputs{input};
  const torch::Tensor logits = scripted.forward(inputs).toTensor();
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_LE((logits - expected).abs().max().item<double>(), 1e-5);
}

// simplecnn from a safetensors file (the name from its metadata); resnet18 from model.pt with the
// run's config.yaml beside it (the name from the config).
TEST(ExportScript, TorchScriptGivesOurLogits) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  struct Case {
    ModelSpec spec;
    int64_t size;
    bool safetensors;
  };
  for (const Case& c : {Case{spec_of("simplecnn", 4, 1, 10), 28, true}, Case{spec_of("resnet18", 4, 3, 10), 32, false}}) {
    SCOPED_TRACE(c.spec.name);
    ModelPtr model = trained_looking_model(c.spec);
    const torch::Tensor input = torch::randn({3, c.spec.in_channels, c.size, c.size});
    const torch::Tensor logits = our_logits(*model, input, dir / "input.pt");
    std::string weights_args;
    if (c.safetensors) {
      save_safetensors(*model, dir / "model.safetensors", {{"model.name", c.spec.name}});
      weights_args = "--weights " + (dir / "model.safetensors");
    } else {
      fs::create_directories(dir / "run");
      save_weights(*model, dir / "run/model.pt");
      Config config;
      config.model.name = c.spec.name;
      config.model.width = c.spec.width;
      write_file_atomic(dir / "run/config.yaml", to_yaml(config));
      weights_args = "--weights " + (dir / "run/model.pt") + " --config " + (dir / "run/config.yaml");
    }
    const std::string out = dir / (c.spec.name + ".ts");
    const ScriptRun r = run_export_script(weights_args + " --format torchscript --out " + out + " --check-input " +
                                          (dir / "input.pt") + " --print-logits");
    ASSERT_EQ(r.rc, 0) << r.output;
    ASSERT_TRUE(r.result.is_object()) << r.output;
    EXPECT_EQ(r.result.at("model"), c.spec.name);
    EXPECT_EQ(r.result.at("width"), c.spec.width);
    EXPECT_EQ(r.result.at("in_channels"), c.spec.in_channels);
    EXPECT_EQ(r.result.at("num_classes"), c.spec.num_classes);
    EXPECT_EQ(r.result.at("logits_from"), "torchscript");
    expect_logits_near(r.result.at("logits"), logits, 1e-5);
    expect_torchscript_logits(out, input, logits);
  }
}

TEST(ExportScript, OnnxWritesAModelOrSaysWhyNotInOneLine) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  const ModelSpec spec = spec_of("resnet18", 4, 1, 10);
  ModelPtr model = trained_looking_model(spec);
  const torch::Tensor input = torch::randn({2, 1, 28, 28});
  const torch::Tensor logits = our_logits(*model, input, dir / "input.pt");
  save_weights(*model, dir / "model.pt");
  const ScriptRun r = run_export_script("--weights " + (dir / "model.pt") + " --model resnet18 --format onnx --out " +
                                        (dir / "model.onnx") + " --check-input " + (dir / "input.pt") +
                                        " --print-logits");
  if (r.rc == 2) {  // a PyTorch without the ONNX exporter
    EXPECT_NE(r.output.find("ONNX"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("Traceback"), std::string::npos) << r.output;
    return;
  }
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string onnx = read_file(dir / "model.onnx");
  ASSERT_FALSE(onnx.empty());
  EXPECT_EQ(onnx[0], '\x08') << "an ONNX ModelProto starts with its ir_version field";
  ASSERT_TRUE(r.result.is_object()) << r.output;
  expect_logits_near(r.result.at("logits"), logits, 1e-5);
}

TEST(ExportScript, BadInputsAreOneLineErrors) {
  REQUIRE_PYTHON_TORCH();
  TempDir dir;
  ModelPtr model = make_model(spec_of("simplecnn", 4, 1, 10), 1);
  save_weights(*model, dir / "model.pt");
  write_file_atomic(dir / "junk.bin", "this is not a weights file at all");
  const std::string out = " --format torchscript --out " + (dir / "x.ts");
  for (const std::string& args : {"--weights " + (dir / "missing.pt") + out,
                                  "--weights " + (dir / "junk.bin") + out,
                                  "--weights " + (dir / "model.pt") + " --model resnet18" + out,
                                  "--weights " + (dir / "model.pt") + " --model nosuch" + out,
                                  "--weights " + (dir / "model.pt") + out + " --print-logits"}) {
    SCOPED_TRACE(args);
    const ScriptRun r = run_export_script(args);
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find("export_model.py: error: "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("Traceback"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(dir / "x.ts"));
}

// ---- fullbatch export -------------------------------------------------------------------------

TEST(ExportCli, WritesSafetensorsWithTheRunsConfigThatTheScriptReads) {
  TempDir dir;
  const ModelSpec spec = spec_of("resnet18", 4, 3, 10);
  ModelPtr model = trained_looking_model(spec);
  fs::create_directories(dir / "run");
  save_weights(*model, dir / "run/model.pt");
  Config config;
  config.model.name = "resnet18";
  config.model.width = 4;
  const std::string yaml = to_yaml(config);
  write_file_atomic(dir / "run/config.yaml", yaml);

  std::string out;
  ASSERT_EQ(run_command(kCli + " export --checkpoint " + (dir / "run") + " --out " + (dir / "w.safetensors"), &out), 0)
      << out;
  std::map<std::string, std::string> metadata;
  expect_same_tensors(load_safetensors(dir / "w.safetensors", &metadata), state_dict(*model));
  EXPECT_EQ(metadata["format"], "pt");
  EXPECT_EQ(metadata["source"], dir / "run/model.pt");
  EXPECT_EQ(metadata["model.name"], "resnet18");
  EXPECT_EQ(metadata["model.width"], "4");
  EXPECT_EQ(metadata["data.name"], config.data.name);
  EXPECT_EQ(metadata["fullbatch_config"], yaml);

  // A checkpoint exports its model's tensors (not the optimizer's or the trainer's).
  Checkpoint ckpt;
  ckpt.step = 3;
  ckpt.config_yaml = yaml;
  for (const auto& [name, t] : state_dict(*model)) ckpt.state["model." + name] = t;
  ckpt.state["trainer.step"] = torch::full({}, 3, torch::kInt64);
  const std::string ckpt_path = save_checkpoint(RunDir(dir / "run"), ckpt, 1);
  ASSERT_EQ(run_command(kCli + " export --checkpoint " + ckpt_path + " --format safetensors --out " +
                            (dir / "c.safetensors"), &out), 0) << out;
  expect_same_tensors(load_safetensors(dir / "c.safetensors"), state_dict(*model));

  // TorchScript and ONNX: the command to run instead, in one line, exit 2.
  for (const std::string format : {"torchscript", "onnx"}) {
    EXPECT_EQ(run_command(kCli + " export --checkpoint " + (dir / "run/model.pt") + " --format " + format +
                              " --out " + (dir / "m.x"), &out), 2) << out;
    EXPECT_NE(out.find("python3 scripts/export_model.py --weights " + (dir / "run/model.pt") + " --config " +
                       (dir / "run/config.yaml") + " --format " + format), std::string::npos) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  }
  for (const std::string bad : {" --checkpoint " + (dir / "nothing.pt") + " --out " + (dir / "n.safetensors"),
                                " --checkpoint " + (dir / "run/config.yaml") + " --out " + (dir / "n.safetensors"),
                                " --checkpoint " + (dir / "run") + " --format pickle --out " + (dir / "n.safetensors")}) {
    EXPECT_EQ(run_command(kCli + " export" + bad, &out), 2) << bad << "\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << bad << "\n" << out;
  }
  EXPECT_FALSE(fs::exists(dir / "n.safetensors"));

  // The script rebuilds the model from the safetensors file alone (model.name in its metadata).
  if (!testing::have_python_torch()) return;
  const torch::Tensor input = torch::randn({2, 3, 32, 32});
  const torch::Tensor logits = our_logits(*model, input, dir / "input.pt");
  const ScriptRun r = run_export_script("--weights " + (dir / "w.safetensors") + " --format torchscript --out " +
                                        (dir / "w.ts") + " --check-input " + (dir / "input.pt") + " --print-logits");
  ASSERT_EQ(r.rc, 0) << r.output;
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result.at("model"), "resnet18");
  expect_logits_near(r.result.at("logits"), logits, 1e-5);
}

}  // namespace
}  // namespace fullbatch
