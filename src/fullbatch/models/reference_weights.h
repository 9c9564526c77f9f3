#pragma once
// The reference implementation's weight files (JonasGeiping/fullbatchtraining), read into our
// models. Its training saves, and its hubconf.py loads, a torch.save list [optimizer state, model
// state_dict, scheduler state, scaler state, step]. LibTorch's own unpickler cannot read that:
// before PyTorch 2.x it turns the state_dict's OrderedDict into None, and no version builds the
// Python objects the scheduler state holds (collections.Counter, scheduler and optimizer
// instances). So this reads the torch.save zip archive (torch_archive.h) with a small unpickler
// of its own that keeps such objects opaque (pickle.h), builds only the model's tensors, and
// renames them to ours.
#include <torch/nn/module.h>

#include <map>
#include <string>

namespace fullbatch {

// The model's tensors of a torch.save file, by the file's names. Accepts the layouts the
// reference writes: the training checkpoint's 5-element list (the state dict is its second
// element), a bare state dict (which includes our own model.pt), and the visualization payload
// dict(state_dict=..., ...). Strips a "module." prefix that every name carries
// (DistributedDataParallel). Throws UserError naming the file for anything else, including a
// legacy (pre-1.6, non-zip) torch.save file.
std::map<std::string, torch::Tensor> read_reference_state_dict(const std::string& path);

// The reference's tensors under `ours`' names for model.name `model_name` (resnet*: stem.0 ->
// conv1, stem.1 -> bn1, layers.<i> -> layer<i+1>, downsample -> shortcut; vgg* and densenet121:
// the names agree), each checked against the model's shape. A missing, extra or misshapen entry
// throws a one-line UserError naming `origin` (the file), the entry and the closest name.
std::map<std::string, torch::Tensor> map_reference_names(
    const std::string& model_name, const std::map<std::string, torch::Tensor>& reference,
    const torch::nn::Module& ours, const std::string& origin);

// read_reference_state_dict + map_reference_names + copying into `model` (built with the same
// model.name, model.width, channels and classes as the checkpoint).
void load_reference_weights(torch::nn::Module& model, const std::string& model_name,
                            const std::string& path);

}  // namespace fullbatch
