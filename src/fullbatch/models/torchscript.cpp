#include "fullbatch/models/torchscript.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "fullbatch/common/error.h"

namespace fullbatch {
namespace {

// The line of a torch error the user can act on, without the C++ stack torch appends: the first
// line, or for an error raised inside the TorchScript interpreter (whose first line only says so,
// then comes the module's traceback) the last one, "RuntimeError: <what went wrong>".
std::string torch_error_line(const std::string& message) {
  std::istringstream in(message);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) return "unknown error";
  if (lines.front().find("TorchScript interpreter") != std::string::npos) return lines.back();
  return lines.front();
}

std::string torchscript_shape_text(const std::vector<int64_t>& sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

// A scripted module as a Classifier. Its parameters and buffers are registered on a tree of plain
// nn::Modules that mirrors the scripted module's tree, so names (layer1.0.conv1.weight) and order
// are those of Python's state_dict; the registered tensors are the very tensors the scripted
// module holds (one TensorImpl), so an in-place update by the optimizer, a checkpoint load, the
// broadcast or set_data (to(), channels_last) reaches the scripted forward with no copying.
class TorchScriptModel : public Classifier {
 public:
  TorchScriptModel(torch::jit::Module module, std::string path)
      : module_(std::move(module)), path_(std::move(path)) {
    mirror(module_, *this);
  }

  bool layers_are_submodules() const override { return false; }

  torch::Tensor forward(const torch::Tensor& x) override {
    c10::IValue out;
    {
      // The unoptimized graph runs the same ATen ops as eager code in the same order (no fusion,
      // no autodiff subgraphs): logits and gradients are bit-identical to the zoo model's, and
      // every op keeps its ordinary derivative, so double backprop works.
      torch::jit::GraphOptimizerEnabledGuard unoptimized(false);
      out = module_.forward({x});
    }
    resync_buffers();
    if (!out.isTensor())
      throw UserError("model.path " + path_ + ": forward returned " + out.tagKind() +
                      ", not a tensor of logits");
    return out.toTensor();
  }

  void train(bool on) override {
    Classifier::train(on);
    module_.train(on);
  }

  const torch::jit::Module& scripted() const { return module_; }

 private:
  struct BufferSlot {
    torch::jit::Module owner;
    std::string name;
    torch::Tensor ours;
  };

  void mirror(const torch::jit::Module& source, torch::nn::Module& target) {
    for (const auto& p : source.named_parameters(/*recurse=*/false)) {
      // A frozen parameter (requires_grad=False) stays fixed: it travels as a buffer does.
      if (p.value.requires_grad()) {
        target.register_parameter(p.name, p.value, /*requires_grad=*/true);
      } else {
        target.register_buffer(p.name, p.value);
      }
    }
    for (const auto& b : source.named_buffers(/*recurse=*/false)) {
      target.register_buffer(b.name, b.value);
      buffers_.push_back({source, b.name, b.value});
    }
    for (const auto& child : source.named_children()) {
      auto node = std::make_shared<torch::nn::Module>(child.name);
      target.register_module(child.name, node);
      mirror(child.value, *node);
    }
  }

  // A forward that assigns a buffer (self.count = self.count + 1) instead of updating it in
  // place leaves a new tensor in the scripted module: copy it into ours and put ours back, so
  // both trees keep sharing one tensor.
  void resync_buffers() {
    for (auto& slot : buffers_) {
      c10::IValue value = slot.owner.attr(slot.name);
      if (!value.isTensor() || value.toTensor().is_same(slot.ours)) continue;
      torch::NoGradGuard no_grad;
      const torch::Tensor fresh = value.toTensor();
      if (fresh.sizes() == slot.ours.sizes() && fresh.dtype() == slot.ours.dtype()) {
        slot.ours.copy_(fresh);
      } else {
        slot.ours.set_data(fresh);
      }
      slot.owner.setattr(slot.name, slot.ours);
    }
  }

  torch::jit::Module module_;
  std::string path_;
  std::vector<BufferSlot> buffers_;
};

}  // namespace

ModelPtr load_torchscript_model(const std::string& path) {
  const std::string what = "model.path " + path;
  if (path.empty())
    throw UserError(
        "config key 'model.path': model.name=torchscript needs the file of a saved "
        "TorchScript module (docs/your-model.md)");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw UserError(what + ": no such file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw UserError(what +
                    ": not a TorchScript module (save one with "
                    "torch.jit.script(model).save(FILE); see docs/your-model.md): " +
                    torch_error_line(e.what()));
  }
  if (!module.find_method("forward"))
    throw UserError(what + ": the TorchScript module has no forward method");
  auto model = std::make_shared<TorchScriptModel>(std::move(module), path);
  if (model->parameters(/*recurse=*/true).empty())
    throw UserError(what + ": the TorchScript module has no trainable parameters");
  return model;
}

void check_model_fits_data(Classifier& model, const std::string& path, int64_t channels,
                           int64_t height, int64_t width, int64_t num_classes) {
  const std::vector<int64_t> input = {1, channels, height, width};
  const std::string what = "model.path " + path + ": ";
  const bool was_training = model.is_training();
  torch::Device device = torch::kCPU;
  for (const auto& p : model.parameters()) {
    device = p.device();
    break;
  }
  torch::Tensor logits;
  model.eval();
  try {
    torch::NoGradGuard no_grad;
    logits = model.forward(torch::zeros(input, torch::TensorOptions().device(device)));
  } catch (const UserError&) {
    model.train(was_training);
    throw;
  } catch (const std::exception& e) {
    model.train(was_training);
    throw UserError(what + "the module does not take the data's input " +
                    torchscript_shape_text(input) + ": " + torch_error_line(e.what()));
  }
  model.train(was_training);
  const std::vector<int64_t> expected = {1, num_classes};
  if (logits.sizes().vec() != expected)
    throw UserError(what + "on the data's input " + torchscript_shape_text(input) +
                    " the module gives logits " + torchscript_shape_text(logits.sizes().vec()) +
                    ", the data has " + std::to_string(num_classes) + " classes (needs " +
                    torchscript_shape_text(expected) + ")");
}

namespace detail {

const std::vector<std::string>& torchscript_names() {
  static const std::vector<std::string> names = {kTorchScriptModelName};
  return names;
}

ModelPtr build_torchscript(const ModelSpec& spec) {
  return load_torchscript_model(spec.path);
}

}  // namespace detail
}  // namespace fullbatch
