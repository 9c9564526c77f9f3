#pragma once
// A model the user brings: a TorchScript module (torch.jit.script(model).save(FILE) or
// torch.jit.trace in Python) loaded with libtorch and wrapped as the zoo's Classifier, so the
// trainer, the optimizers, EMA, checkpoints, the rank-0 broadcast, eval, analyze and export see
// its parameters and buffers as those of any zoo model (model.name=torchscript, model.path=FILE).
// Its initial weights are the file's own. docs/your-model.md is the user's guide.
#include <string>
#include <vector>

#include "fullbatch/models/model.h"

namespace fullbatch {

// The model.name that loads model.path.
inline constexpr const char* kTorchScriptModelName = "torchscript";

// Loads `path`. Throws UserError (one line naming the file) when it is missing, is not a
// TorchScript module, has no forward method or has no trainable parameter.
ModelPtr load_torchscript_model(const std::string& path);

// The dry forward run before training: one all-zero input [1, channels, height, width] in eval
// mode without gradients (the module's state and every generator stay untouched). Throws
// UserError naming `path`, the data's input shape and what the module did instead (its own error
// line, or the shape of its output) unless it returns logits [1, num_classes].
void check_model_fits_data(Classifier& model, const std::string& path, int64_t channels,
                           int64_t height, int64_t width, int64_t num_classes);

namespace detail {
const std::vector<std::string>& torchscript_names();
ModelPtr build_torchscript(const ModelSpec& spec);
}  // namespace detail

}  // namespace fullbatch
