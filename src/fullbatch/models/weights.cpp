#include "fullbatch/models/weights.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"

namespace fullbatch {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers()) out[item.key()] = item.value().detach();
  return out;
}

std::string pickle_state_dict(const std::map<std::string, torch::Tensor>& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : state) dict.insert(name, t.detach().to(torch::kCPU).contiguous());
  std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

std::map<std::string, torch::Tensor> unpickle_state_dict(const std::string& bytes,
                                                         const std::string& origin) {
  std::map<std::string, torch::Tensor> out;
  try {
    std::vector<char> data(bytes.begin(), bytes.end());
    c10::IValue value = torch::pickle_load(data);
    if (!value.isGenericDict()) throw UserError(origin + ": not a state dict");
    for (const auto& item : value.toGenericDict()) {
      if (!item.key().isString() || !item.value().isTensor())
        throw UserError(origin + ": state dict entries must map names to tensors");
      out[item.key().toStringRef()] = item.value().toTensor();
    }
  } catch (const c10::Error& e) {
    throw UserError(origin + ": not a readable weights file (torch.save/pickle of a dict)");
  }
  return out;
}

void save_weights(const torch::nn::Module& module, const std::string& path) {
  write_file_atomic(path, pickle_state_dict(state_dict(module)));
}

void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& origin) {
  torch::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& name, torch::Tensor target) {
    auto it = state.find(name);
    if (it == state.end()) throw UserError(origin + ": missing tensor '" + name + "'");
    if (!it->second.sizes().equals(target.sizes()))
      throw UserError(origin + ": tensor '" + name + "' has shape " +
                      c10::str(it->second.sizes()) + ", the model expects " +
                      c10::str(target.sizes()));
    target.copy_(it->second);
  };
  size_t expected = 0;
  for (auto& item : module.named_parameters()) copy_into(item.key(), item.value()), ++expected;
  for (auto& item : module.named_buffers()) copy_into(item.key(), item.value()), ++expected;
  if (state.size() != expected)
    throw UserError(origin + ": holds " + std::to_string(state.size()) + " tensors, the model has " +
                    std::to_string(expected) + " (another model.name or model.width?)");
}

void load_weights(torch::nn::Module& module, const std::string& path) {
  load_state_dict(module, unpickle_state_dict(read_file(path), "weights file " + path),
                  "weights file " + path);
}

}  // namespace fullbatch
