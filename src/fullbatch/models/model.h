#pragma once
// The model zoo's interface: every model is an ordinary torch::nn::Module classifier, built by
// name with weights drawn from a keyed generator, so every rank and every rerun starts equal.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fullbatch {

// Every model is an ordinary torch::nn::Module with a virtual forward, so the trainer can hold
// any of them through one pointer. Submodule names follow PyTorch's conventions (conv1, bn1,
// layer1.0.conv1, ..., fc) so a saved state dict reads naturally in Python.
class Classifier : public torch::nn::Module {
 public:
  // x: float [n, C, H, W] -> logits [n, num_classes]
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // Whether every layer of the forward is one of the registered submodules, so that they can be
  // inspected and switched (models/block_batchnorm.h). A TorchScript module's graph is not.
  virtual bool layers_are_submodules() const { return true; }
};
using ModelPtr = std::shared_ptr<Classifier>;

struct ModelSpec {
  std::string name = "resnet18";
  int64_t width = 64;  // channels of the first stage (64 = the paper's ResNet-18)
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  bool zero_init_residual =
      false;         // zero the last BN of each residual branch (off, as the paper ran)
  std::string path;  // model.name=torchscript: the saved module (models/torchscript.h)
};

std::vector<std::string> model_names();
// Throws UserError naming config key model.name and listing the names when `name` is unknown.
void check_model_name(const std::string& name);

// Builds the model and initializes every weight from a generator keyed by `init_seed`
// with the family's initialization as the reference's model code does it (models/zoo.h); a
// TorchScript model (models/torchscript.h) keeps its file's weights and ignores the seed.
// Throws UserError for an unknown name or a bad width.
ModelPtr make_model(const ModelSpec& spec, uint64_t init_seed);

int64_t count_parameters(const torch::nn::Module& model);

// Whether channels-last is the faster float32 layout on the CPU for this model, as measured
// (bench/channels_last.sh, docs/performance.md): the ResNets from width 8 on, where oneDNN's
// channels-last convolutions win; at width 4 they lose 2x. The other families are not measured
// and stay NCHW. What impl.channels_last=auto chooses on the CPU in float32.
bool channels_last_is_faster_on_cpu(const ModelSpec& spec);

}  // namespace fullbatch
