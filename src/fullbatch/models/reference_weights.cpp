#include "fullbatch/models/reference_weights.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/common/strings.h"
#include "fullbatch/models/torch_archive.h"
#include "fullbatch/models/weights.h"

namespace fullbatch {
namespace {

using pickle::Value;
using pickle::ValuePtr;

// ---- Finding the model's tensors ---------------------------------------------------------------

// A dict of name -> tensor. Entries that are opaque objects count too, so that a tensor this
// reader cannot build is reported by name rather than hiding the whole dict.
bool is_state_dict(const Value& v) {
  if (v.kind != Value::Kind::kDict) return false;
  bool any_tensor = false;
  for (const auto& entry : v.entries) {
    if (entry.first->kind != Value::Kind::kText) return false;
    const Value::Kind kind = entry.second->kind;
    if (kind != Value::Kind::kTensor && kind != Value::Kind::kObject) return false;
    any_tensor = any_tensor || kind == Value::Kind::kTensor;
  }
  return any_tensor;
}

constexpr const char* kLayouts =
    "holds none of the reference's layouts: a state dict (names to tensors), the training "
    "checkpoint's list [optimizer, model, scheduler, scaler, step], or a dict with a "
    "'state_dict' entry";

// The layouts of the reference's torch.save calls, tried in this order:
//   torch.save(model.state_dict())                               (and our model.pt)
//   [optim_state, model_state, scheduler_state, scaler_state, step]   training/utils.py
//                                                 _save_to_checkpoint; hubconf.py unpacks it
//   dict(state_dict=..., model_cfg=..., grads=..., update_directions=...)   training/utils.py
//                                                 _save_state_for_visualization
const Value* find_state_dict(const Value& root) {
  if (is_state_dict(root)) return &root;
  if ((root.kind == Value::Kind::kList || root.kind == Value::Kind::kTuple) &&
      root.items.size() == 5 && is_state_dict(*root.items[1]))
    return root.items[1].get();
  if (root.kind == Value::Kind::kDict) {
    for (const auto& entry : root.entries)
      if (entry.first->kind == Value::Kind::kText && entry.first->text == "state_dict" &&
          is_state_dict(*entry.second))
        return entry.second.get();
  }
  return nullptr;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::map<std::string, torch::Tensor> without_common_prefix(
    std::map<std::string, torch::Tensor> state, const std::string& prefix) {
  if (state.empty()) return state;
  for (const auto& entry : state)
    if (entry.first.rfind(prefix, 0) != 0) return state;
  std::map<std::string, torch::Tensor> out;
  for (auto& entry : state) out.emplace(entry.first.substr(prefix.size()), std::move(entry.second));
  return out;
}

// ---- Names ----------------------------------------------------------------------------------

// The reference's ResNet (fullbatch/models/resnets.py; stem "CIFAR", downsample "C") holds
// stem = Sequential(conv, BatchNorm, ReLU), layers = Sequential of stages of blocks, each block
// conv1/bn1/conv2/bn2[/conv3/bn3] and downsample = Sequential(AvgPool2d, conv1x1, BatchNorm), and
// fc. Ours has conv1, bn1, layer1..layerN and shortcut = (Identity or AvgPool2d, conv1x1,
// BatchNorm): the same tensors, so indices inside a block carry over unchanged.
std::string resnet_name(const std::string& ref) {
  const std::string layers = "layers.";
  if (ref.rfind("stem.0.", 0) == 0) return "conv1." + ref.substr(7);
  if (ref.rfind("stem.1.", 0) == 0) return "bn1." + ref.substr(7);
  if (ref.rfind(layers, 0) != 0) return ref;
  const size_t dot = ref.find('.', layers.size());
  if (dot == std::string::npos) return ref;
  const std::string stage = ref.substr(layers.size(), dot - layers.size());
  if (stage.empty() || stage.size() > 4 ||
      !std::all_of(stage.begin(), stage.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return ref;
  std::string rest = ref.substr(dot);  // ".<block>.conv1.weight"
  const std::string downsample = ".downsample.";
  const size_t at = rest.find(downsample);
  if (at != std::string::npos) rest.replace(at, downsample.size(), ".shortcut.");
  return "layer" + std::to_string(std::stoi(stage) + 1) + rest;
}

// The reference's VGG (features.<i>: conv with bias, BatchNorm, ReLU, max-pools; classifier, the
// "CIFAR" head) and DenseNet (torchvision's names with the "CIFAR" stem, conv0 alone) name their
// tensors as ours do.
std::string same_name(const std::string& ref) {
  return ref;
}

using Rename = std::string (*)(const std::string&);

Rename rename_for(const std::string& model_name, const std::string& origin) {
  if (model_name.rfind("resnet", 0) == 0) return resnet_name;
  // PyramidNet, NFNet and the linear model register their modules under the reference's names.
  for (const char* prefix : {"vgg", "densenet", "pyramidnet", "nfnet", "linear"})
    if (model_name.rfind(prefix, 0) == 0) return same_name;
  throw UserError(origin + ": model.name '" + model_name +
                  "' has no counterpart in the reference implementation (its checkpoints load "
                  "into resnet*, vgg*, densenet*, pyramidnet*, nfnet and linear)");
}

// The candidate nearest to `name` by edit distance; nullptr when there is none.
const std::string* closest(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(name, candidate);
    if (best == nullptr || d < best_distance) {
      best = &candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string quoted(const std::string* name) {
  return name == nullptr ? "(none)" : "'" + printable(*name) + "'";
}

}  // namespace

std::map<std::string, torch::Tensor> read_reference_state_dict(const std::string& path) {
  const std::string origin = "reference checkpoint " + path;
  try {
    TorchArchive archive(path, origin);
    const ValuePtr root = archive.read_pickle();
    const Value* dict = find_state_dict(*root);
    if (dict == nullptr) throw UserError(origin + ": " + kLayouts);
    std::map<std::string, torch::Tensor> out;
    for (const auto& entry : dict->entries)
      out[entry.first->text] = archive.tensor(entry.first->text, *entry.second);
    // DistributedDataParallel wraps the model as .module; the reference runs its own all-reduce
    // instead, but a state dict taken from a wrapped model is common enough to accept.
    return without_common_prefix(std::move(out), "module.");
  } catch (const c10::Error& e) {
    throw UserError(origin + ": not a readable torch.save archive (" +
                    printable(first_line(e.what_without_backtrace())) + ")");
  }
}

std::map<std::string, torch::Tensor> map_reference_names(
    const std::string& model_name, const std::map<std::string, torch::Tensor>& reference,
    const torch::nn::Module& ours, const std::string& origin) {
  const Rename rename = rename_for(model_name, origin);
  std::map<std::string, std::string> source;  // our name -> the file's name
  std::vector<std::string> renamed;
  for (const auto& entry : reference) {
    const std::string name = rename(entry.first);
    auto inserted = source.emplace(name, entry.first);
    if (!inserted.second)
      throw UserError(origin + ": entries '" + printable(inserted.first->second) + "' and '" +
                      printable(entry.first) + "' both stand for '" + printable(name) + "'");
    renamed.push_back(name);
  }
  const std::map<std::string, torch::Tensor> expected = state_dict(ours);
  std::vector<std::string> our_names;
  for (const auto& entry : expected) our_names.push_back(entry.first);

  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, target] : expected) {
    auto it = source.find(name);
    if (it == source.end()) {
      const std::string* nearest = closest(name, renamed);
      throw UserError(origin + ": no entry for " + model_name + "'s tensor '" + name +
                      "'; closest entry in the file: " +
                      quoted(nearest == nullptr ? nullptr : &source.at(*nearest)));
    }
    const torch::Tensor& tensor = reference.at(it->second);
    if (!tensor.sizes().equals(target.sizes()))
      throw UserError(origin + ": entry '" + printable(it->second) + "' has shape " +
                      c10::str(tensor.sizes()) + ", " + model_name + " expects " +
                      c10::str(target.sizes()) + " for '" + name +
                      "' (another model.width, data set or model.name?)");
    out[name] = tensor;
  }
  for (const auto& [name, file_name] : source) {
    if (expected.count(name) != 0) continue;
    const std::string read_as = name == file_name ? "" : " (read as '" + printable(name) + "')";
    throw UserError(origin + ": entry '" + printable(file_name) + "'" + read_as +
                    " has no counterpart in " + model_name +
                    "; closest model tensor: " + quoted(closest(name, our_names)));
  }
  return out;
}

void load_reference_weights(torch::nn::Module& model, const std::string& model_name,
                            const std::string& path) {
  const std::string origin = "reference checkpoint " + path;
  load_state_dict(model,
                  map_reference_names(model_name, read_reference_state_dict(path), model, origin),
                  origin);
}

}  // namespace fullbatch
