// export.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "commands.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/config.h"
#include "fullbatch/models/safetensors.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/run/checkpoint.h"
#include "fullbatch/run/run_dir.h"

namespace fs = std::filesystem;

namespace fullbatch::cli {
namespace {

struct ExportArgs {
  std::string checkpoint;
  std::string format = "safetensors";
  std::string out;
};

// The weights to export and the config of the run they come from ("" when there is none).
struct Exported {
  std::string path;
  std::map<std::string, torch::Tensor> state;
  std::string config_yaml;
  std::string config_origin;
};

// A run directory means its model.pt; a .ckpt file its model's tensors and embedded config; any
// other file is a weights file (model.pt, init-weights) with config.yaml beside it, if any.
Exported read_exported(const std::string& checkpoint) {
  Exported e;
  e.path = fs::is_directory(checkpoint) ? RunDir(checkpoint).weights_file() : checkpoint;
  if (!fs::is_regular_file(e.path)) throw UserError("checkpoint " + e.path + ": no such file");
  if (fs::path(e.path).extension() == ".ckpt") {
    const Checkpoint ckpt = read_checkpoint(e.path);
    const std::string prefix = "model.";
    for (const auto& [name, tensor] : ckpt.state)
      if (name.rfind(prefix, 0) == 0) e.state[name.substr(prefix.size())] = tensor;
    if (e.state.empty()) throw UserError("checkpoint " + e.path + ": holds no model.* tensors");
    e.config_yaml = ckpt.config_yaml;
    e.config_origin = "in checkpoint " + e.path;
    return e;
  }
  e.state = unpickle_state_dict(read_file(e.path), "weights file " + e.path);
  const RunDir run(fs::path(e.path).parent_path().string());
  if (fs::is_regular_file(run.config_file())) {
    e.config_yaml = read_file(run.config_file());
    e.config_origin = run.config_file();
  }
  return e;
}

// What a reader needs to rebuild the model (scripts/export_model.py reads model.name), and the
// whole config for the record.
std::map<std::string, std::string> metadata_of(const Exported& e) {
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"source", e.path}};
  if (e.config_yaml.empty()) return metadata;
  Config config;
  apply_yaml_text(config, e.config_yaml, e.config_origin);
  for (const char* key : {"model.name", "model.width", "data.name"}) metadata[key] = get_key(config, key);
  metadata["fullbatch_config"] = e.config_yaml;
  return metadata;
}

// TorchScript and ONNX need Python's torch (the model rebuilt as nn.Module): say which command.
std::string python_export_command(const ExportArgs& a) {
  const bool is_run = fs::is_directory(a.checkpoint);
  const std::string weights = is_run ? RunDir(a.checkpoint).weights_file() : a.checkpoint;
  const std::string run = is_run ? a.checkpoint : fs::path(a.checkpoint).parent_path().string();
  const std::string config = RunDir(run.empty() ? "." : run).config_file();
  std::string command = "python3 scripts/export_model.py --weights " + weights;
  if (fs::is_regular_file(config)) command += " --config " + config;
  return command + " --format " + a.format + " --out " + a.out;
}

int cmd_export(const ExportArgs& a) {
  if (a.format != "safetensors")
    throw UserError("fullbatch export writes safetensors; for " + a.format +
                    " run the script on Debian's python3-torch: " + python_export_command(a));
  const Exported e = read_exported(a.checkpoint);
  const std::map<std::string, std::string> metadata = metadata_of(e);
  const std::string bytes = encode_safetensors(e.state, metadata);
  write_file_atomic(a.out, bytes);
  const auto name = metadata.find("model.name");
  const std::string of_model = name == metadata.end() ? std::string() : " of " + name->second;
  std::printf("%s: %zu tensors%s in safetensors format (%zu bytes) from %s\n", a.out.c_str(),
              e.state.size(), of_model.c_str(), bytes.size(), e.path.c_str());
  return 0;
}

}  // namespace

void add_export_commands(CLI::App& app, Commands& out) {
  auto args = std::make_shared<ExportArgs>();
  auto* c = app.add_subcommand("export", "write a run's weights as safetensors (docs/export.md)");
  c->add_option("--checkpoint", args->checkpoint, "run directory, its model.pt, a weights file or a .ckpt")
      ->required();
  c->add_option("--format", args->format,
                "safetensors (TorchScript and ONNX: scripts/export_model.py, which this prints)")
      ->check(CLI::IsMember({"safetensors", "torchscript", "onnx"}));
  c->add_option("--out", args->out, "file to write")->required();
  out.push_back({c, [args] { return cmd_export(*args); }});
}

}  // namespace fullbatch::cli
