// train, eval, presets, keys.
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/config.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/distributed/process_group.h"
#include "fullbatch/models/reference_weights.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/run/run.h"
#include "fullbatch/run/run_dir.h"
#include "fullbatch/training/evaluation.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/runtime.h"
#include "fullbatch/training/trainer.h"

namespace fs = std::filesystem;

namespace fullbatch::cli {
namespace {

struct TrainArgs {
  std::string preset;
  std::vector<std::string> configs;
  std::string out;
  std::string resume;
  std::vector<std::string> overrides;
  bool quiet = false;
  bool dry_run = false;
};

void print_result(const Config& config, const nlohmann::json& summary, const std::string& dir) {
  std::printf("%s: val accuracy %.2f%% after %lld steps (%.1f s); run directory %s\n",
              config.name.c_str(), summary.value("final_val_accuracy", 0.0),
              static_cast<long long>(summary.value("steps", 0)), summary.value("total_time_s", 0.0),
              dir.c_str());
}

// The run's own config.yaml, then the command line's key=value overrides; run_training refuses
// any override that would change results.
int cmd_resume(const TrainArgs& a) {
  if (!a.preset.empty() || !a.configs.empty())
    throw UserError("--resume takes the config from " + a.resume +
                    "/config.yaml; give only key=value overrides");
  if (!a.out.empty() && fs::path(a.out) != fs::path(a.resume))
    throw UserError("--resume " + a.resume + " continues that run directory; drop --out " + a.out);
  if (!fs::is_directory(a.resume))
    throw UserError("cannot resume " + a.resume + ": no such run directory");
  const RunDir run(a.resume);
  if (run.status() == "completed") {
    std::printf("run %s is already complete (%lld steps); nothing to resume\n", a.resume.c_str(),
                static_cast<long long>(run.read_summary()->value("steps", 0)));
    return 0;
  }
  if (!fs::is_regular_file(run.config_file()))
    throw UserError("cannot resume " + a.resume + ": not a run directory (no config.yaml)");
  Config config;
  apply_yaml_file(config, run.config_file());
  for (const auto& o : a.overrides) apply_override(config, o);
  validate(config);
  config = localize_for_rank(config, dist_env_from_environment());
  auto comm = communicator_from_env(config);
  RunOptions options;
  options.out_dir = a.resume;
  options.resume = true;
  options.progress = config.impl.progress && !a.quiet;
  nlohmann::json summary = run_training(config, options, comm);
  if (comm->is_root()) print_result(config, summary, options.out_dir);
  return 0;
}

double current_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

// The options with the process set up for them (threads, determinism), warnings printed.
TrainerOptions prepare(const Config& config) {
  TrainerOptions options = trainer_options(config);
  for (const auto& warning : apply_process_settings(
           options.execution, resolve_execution(options.execution, options.model)))
    std::fprintf(stderr, "fullbatch: warning: %s\n", warning.c_str());
  return options;
}

// Builds everything a run allocates before its first step (data, fixed augmentation table,
// model, optimizer) and reports its size without training: what a configuration will cost
// before committing hours to it.
int cmd_dry_run(const Config& config) {
  Trainer trainer(prepare(config), std::make_shared<LocalCommunicator>());
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  nlohmann::json out = {
      {"train_images", trainer.data().train.size()},
      {"train_samples", trainer.source().num_samples()},
      {"blocks_per_step", trainer.train_images_per_step() / trainer.options().order.batch_size},
      {"fixed_augmentation_table_bytes", trainer.source().table_bytes()},
      {"parameters", count_parameters(trainer.model())},
      {"rss_mb", current_rss_mb()},
      {"max_rss_mb", static_cast<double>(usage.ru_maxrss) / 1024.0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int cmd_train(const TrainArgs& a) {
  if (!a.resume.empty()) return cmd_resume(a);
  Config config = resolve_config(a.preset, a.configs, a.overrides);
  if (a.dry_run) return cmd_dry_run(config);
  // Under torchrun or `fullbatch launch` every rank runs this; rank 0 writes the run directory.
  config = localize_for_rank(config, dist_env_from_environment());
  auto comm = communicator_from_env(config);
  RunOptions options;
  options.out_dir = a.out.empty() ? RunDir::default_for(config).path() : a.out;
  options.progress = config.impl.progress && !a.quiet;
  nlohmann::json summary = run_training(config, options, comm);
  if (comm->is_root()) print_result(config, summary, options.out_dir);
  return 0;
}

struct InitArgs {
  std::string preset;
  std::vector<std::string> configs;
  std::vector<std::string> overrides;
  std::string out;
};

// The weights and buffers a run with this config starts from, before its first step, so another
// implementation (tests/parity) or an analysis can start from exactly the same point.
int cmd_init_weights(const InitArgs& a) {
  const TrainerOptions options = prepare(resolve_config(a.preset, a.configs, a.overrides));
  const Execution execution = resolve_execution(options.execution, options.model);
  DataSpec test_only = options.data;  // the model's shape needs the channels and classes only
  test_only.with_train = false;
  const Dataset data = load_dataset(test_only);
  ModelPtr model = build_model(options, data, execution);
  save_weights(*model, a.out);
  std::printf("%s: initial weights of %s (%lld parameters)\n", a.out.c_str(),
              options.model.name.c_str(), static_cast<long long>(count_parameters(*model)));
  return 0;
}

struct EvalArgs {
  std::string checkpoint;
  bool reference = false;  // the checkpoint is the reference implementation's .pth
  std::vector<std::string> configs;
  std::vector<std::string> overrides;
};

int cmd_eval(const EvalArgs& a) {
  if (!fs::is_regular_file(a.checkpoint))
    throw UserError("checkpoint " + a.checkpoint + ": no such file");
  std::vector<std::string> configs;
  const RunDir run(fs::path(a.checkpoint).parent_path().string());
  if (fs::exists(run.config_file())) configs.push_back(run.config_file());
  configs.insert(configs.end(), a.configs.begin(), a.configs.end());
  Config config = resolve_config("", configs, a.overrides);
  const TrainerOptions options = prepare(config);
  const Execution execution = resolve_execution(options.execution, options.model);
  DataSpec test_only = options.data;
  test_only.with_train = false;
  Dataset data = load_dataset(test_only);
  to_device(data, execution.device);
  ModelPtr model = build_model(options, data, execution);
  if (a.reference) {
    load_reference_weights(*model, options.model.name, a.checkpoint);
  } else {
    load_weights(*model, a.checkpoint);
  }
  LocalCommunicator local;
  Evaluation e = evaluate_model(*model, data, options.eval, execution, local);
  nlohmann::json out = {{"checkpoint", a.checkpoint},
                        {"dataset", config.data.name},
                        {"test_images", e.images},
                        {"val_accuracy", e.accuracy},
                        {"val_loss", e.loss}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int cmd_presets() {
  // Show what each preset changes relative to the defaults, not the chain it was built from.
  const auto defaults = flatten(Config{});
  for (const auto& p : presets()) {
    Config c;
    apply_preset(c, p);
    std::string changes;
    const auto resolved = flatten(c);
    for (size_t i = 0; i < resolved.size(); ++i)
      if (resolved[i] != defaults[i] && resolved[i].first != "name" &&
          resolved[i].first != "preset")
        changes += " " + resolved[i].first + "=" + resolved[i].second;
    std::printf("%-24s %-22s paper: %s\n%-24s %s\n%-24s  sets:%s\n", p.name.c_str(),
                p.table.c_str(), p.paper_accuracy.c_str(), "", p.description.c_str(), "",
                changes.empty() ? " (defaults)" : changes.c_str());
  }
  return 0;
}

int cmd_keys() {
  Config defaults;
  for (const auto& k : config_keys())
    std::printf("%-40s %-7s %-22s %s\n", k.key.c_str(), k.type.c_str(),
                ("[" + get_key(defaults, k.key) + "]").c_str(), k.help.c_str());
  // The names the zoo, the loaders and the optimizers know (the config layer cannot see them).
  auto list = [](const char* key, const std::vector<std::string>& names) {
    std::string text;
    for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
    std::printf("\n%s: %s", key, text.c_str());
  };
  list("model.name", model_names());
  list("data.name", dataset_names());
  list("hyp.optim.name", optimizer_names());
  list("hyp.optim_modification.name", modification_names());
  std::printf("\n");
  return 0;
}

}  // namespace

void add_training_commands(CLI::App& app, Commands& out) {
  auto train = std::make_shared<TrainArgs>();
  auto* t = app.add_subcommand("train", "train one run (full batch or SGD)");
  t->add_option("--preset", train->preset, "a paper experiment (see `fullbatch presets`)");
  t->add_option("--config", train->configs, "YAML file(s) of config keys");
  t->add_option("--out", train->out, "run directory (default runs/<name>_s<seed>)");
  t->add_option("--resume", train->resume,
                "continue the run in DIR from its newest valid checkpoint");
  t->add_flag("--quiet", train->quiet, "no progress line");
  t->add_flag("--dry-run", train->dry_run,
              "load data and build the model, print sizes and peak memory, do not train");
  t->add_option("overrides", train->overrides, "key=value config overrides");
  out.push_back({t, [train] { return cmd_train(*train); }});

  auto eval = std::make_shared<EvalArgs>();
  auto* e = app.add_subcommand("eval", "evaluate saved weights on the test set");
  e->add_option("--checkpoint", eval->checkpoint, "model.pt of a run")->required();
  e->add_flag("--reference", eval->reference,
              "--checkpoint is a .pth of the reference implementation (JonasGeiping/"
              "fullbatchtraining), read through its name mapping into model.name");
  e->add_option("--config", eval->configs, "YAML file(s) of config keys");
  e->add_option("overrides", eval->overrides, "key=value config overrides");
  out.push_back({e, [eval] { return cmd_eval(*eval); }});

  auto init = std::make_shared<InitArgs>();
  auto* i =
      app.add_subcommand("init-weights", "write the weights a run starts from (model.pt format)");
  i->add_option("--preset", init->preset, "a paper experiment (see `fullbatch presets`)");
  i->add_option("--config", init->configs, "YAML file(s) of config keys");
  i->add_option("--out", init->out, "file to write")->required();
  i->add_option("overrides", init->overrides, "key=value config overrides");
  out.push_back({i, [init] { return cmd_init_weights(*init); }});

  out.push_back({app.add_subcommand("presets", "list the paper's experiments"), cmd_presets});
  out.push_back({app.add_subcommand("keys", "list every config key with its default"), cmd_keys});
}

}  // namespace fullbatch::cli
