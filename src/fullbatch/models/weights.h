#pragma once
// Weights on disk: a module's parameters and buffers as a pickled dict of tensors, which
// Python's torch.load reads as a plain dict (model.pt), and which checkpoints embed.
#include <torch/nn/module.h>

#include <map>
#include <string>

namespace fullbatch {

// The module's parameters and buffers by their PyTorch-style names.
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

// Pickled c10::Dict<str, Tensor> (CPU tensors): Python's torch.load reads it as a plain dict.
std::string pickle_state_dict(const std::map<std::string, torch::Tensor>& state);
std::map<std::string, torch::Tensor> unpickle_state_dict(const std::string& bytes,
                                                         const std::string& origin);

void save_weights(const torch::nn::Module& module, const std::string& path);

// Copies every tensor by name; throws UserError naming the file for a missing, extra or
// misshapen entry.
void load_weights(torch::nn::Module& module, const std::string& path);
void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& origin);

}  // namespace fullbatch
