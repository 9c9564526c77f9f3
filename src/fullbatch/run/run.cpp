#include "fullbatch/run/run.h"

#include "fullbatch/run/analyze.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "fullbatch/common/error.h"
#include "fullbatch/run/checkpoint.h"
#include "fullbatch/run/progress.h"
#include "fullbatch/run/run_dir.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/runtime.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch {
namespace fs = std::filesystem;
namespace {

nlohmann::json base_summary(const Config& config, const Trainer& trainer) {
  return {{"name", config.name},
          {"preset", config.preset},
          {"seed", config.seed},
          {"status", "running"},
          {"steps", trainer.step()},
          {"planned_steps", config.hyp.steps},
          {"train_stochastic", config.hyp.train_stochastic},
          {"train_images", trainer.data().train.size()},
          {"test_images", trainer.data().test.size()},
          {"dataset", config.data.name},
          {"model", config.model.name},
          {"width", config.model.width},
          {"device", trainer.device().str()},
          {"channels_last", trainer.channels_last()},
          {"blocks_per_pass", trainer.blocks_per_pass()}};
}

double number_or_zero(const nlohmann::json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : 0.0;
}

// What the run has written so far: the metrics text (a checkpoint stores these exact bytes) and
// what the summary needs from it.
struct Progression {
  std::string metrics;
  nlohmann::json last;  // the newest record; null before the first step
  double images = 0;    // training images processed, for the summary's throughput

  void add(const std::string& line, const nlohmann::json& record) {
    metrics += line;
    last = record;
    images += number_or_zero(record, "images_per_s") * number_or_zero(record, "step_time_s");
  }
};

Progression progression_from(const std::string& metrics, const std::string& origin) {
  Progression p;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object()) throw UserError("checkpoint " + origin + ": unreadable metrics line");
    p.add(line + "\n", record);
  }
  return p;
}

// Finds where a resumed run continues and refuses a config that would change its results.
std::optional<FoundCheckpoint> prepare_resume(const Config& config, const RunDir& run) {
  const std::string& dir = run.path();
  if (!fs::is_regular_file(run.config_file()))
    throw UserError("cannot resume " + dir + ": not a run directory (no config.yaml)");
  std::optional<FoundCheckpoint> found = newest_valid_checkpoint(run);
  Config before;
  if (found) {
    for (const auto& why : found->rejected)
      std::fprintf(stderr, "fullbatch: warning: %s; trying an older checkpoint\n", why.c_str());
    apply_yaml_text(before, found->checkpoint.config_yaml, "in checkpoint " + found->path);
  } else {
    apply_yaml_file(before, run.config_file());
  }
  const std::vector<std::string> differ = result_differences(before, config);
  if (!differ.empty()) {
    const std::string& key = differ.front();
    throw UserError("cannot resume " + dir + ": config key '" + key + "' is '" +
                    get_key(before, key) + "' in the run but '" + get_key(config, key) +
                    "' now, which changes results; start a new run instead");
  }
  return found;
}

void restore(Trainer& trainer, const FoundCheckpoint& found) {
  try {
    trainer.load_state_dict(found.checkpoint.state);
  } catch (const UserError& e) {
    std::string why = e.what();
    if (why.rfind("checkpoint: ", 0) == 0) why.erase(0, 12);
    throw UserError("checkpoint " + found.path + ": " + why);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    throw UserError("checkpoint " + found.path + ": does not fit the model (" +
                    why.substr(0, why.find('\n')) + ")");
  }
  if (trainer.step() != found.checkpoint.step)
    throw UserError("checkpoint " + found.path + ": holds step " + std::to_string(trainer.step()) +
                    " but its name and metadata say " + std::to_string(found.checkpoint.step));
}

// hyp.stop_at_val_accuracy: whether the run reached its target and at what cost (training wall
// time, passes over the data, steps), so methods can be compared at equal accuracy.
void fill_time_to_accuracy(nlohmann::json& summary, const nlohmann::json& last, double target) {
  if (target <= 0) return;
  summary["stop_at_val_accuracy"] = target;
  const bool reached = last.contains("reached_val_accuracy");
  summary["reached_val_accuracy"] = reached;
  if (!reached) return;
  summary["time_to_accuracy_s"] = number_or_zero(last, "time_s");
  summary["passes_to_accuracy"] = number_or_zero(last, "epoch");
  summary["steps_to_accuracy"] = last.value("step", int64_t{0});
}

void fill_final(nlohmann::json& summary, const Progression& so_far, double target_accuracy) {
  if (so_far.last.is_null()) return;
  const nlohmann::json& last = so_far.last;
  fill_time_to_accuracy(summary, last, target_accuracy);
  const double time_s = number_or_zero(last, "time_s");
  summary["epochs"] = number_or_zero(last, "epoch");
  summary["final_val_accuracy"] = number_or_zero(last, "val_accuracy");
  summary["final_val_loss"] = number_or_zero(last, "val_loss");
  summary["final_train_accuracy"] = number_or_zero(last, "train_accuracy");
  summary["final_train_loss"] = number_or_zero(last, "train_loss");
  summary["total_time_s"] = time_s;
  summary["images_per_s"] = time_s > 0 ? so_far.images / time_s : 0.0;
}

}  // namespace

nlohmann::json run_training(const Config& config, const RunOptions& options,
                            std::shared_ptr<Communicator> comm) {
  if (!comm) comm = std::make_shared<LocalCommunicator>();
  // Refuse an occupied folder before the (slow) data loading, but create nothing until the
  // config and the data have been checked, so a bad input leaves no half-made run behind.
  const RunDir run(options.out_dir);
  std::optional<FoundCheckpoint> resume_from;
  if (options.resume) resume_from = prepare_resume(config, run);
  if (comm->is_root()) run.check_available(options.resume);
  TrainerOptions trainer_opts = trainer_options(config);
  for (const auto& warning :
       apply_process_settings(trainer_opts.execution, resolve_execution(trainer_opts.execution, trainer_opts.model)))
    if (comm->is_root()) std::fprintf(stderr, "fullbatch: warning: %s\n", warning.c_str());
  Trainer trainer(std::move(trainer_opts), comm);
  Progression so_far;
  bool finished = false;
  std::string last_checkpoint;  // for the divergence message
  if (resume_from) {
    restore(trainer, *resume_from);
    so_far = progression_from(resume_from->checkpoint.metrics_jsonl, resume_from->path);
    finished = resume_from->checkpoint.finished;
    last_checkpoint = resume_from->path;
  }
  // Rank 0 alone writes the run directory.
  const RunDir* writer = comm->is_root() ? &run : nullptr;
  if (writer) {
    writer->create(options.resume);
    writer->write_config(config);
    // Lines past the checkpoint were written by the process that crashed; they are redone.
    if (options.resume) writer->replace_metrics(so_far.metrics);
  }
  nlohmann::json summary = base_summary(config, trainer);
  if (writer) writer->write_summary(summary);

  const std::string config_yaml = to_yaml(config);
  auto checkpoint = [&](bool done) {
    if (!writer) return;
    Checkpoint c{trainer.step(), done, config_yaml, so_far.metrics, trainer.state_dict()};
    last_checkpoint = save_checkpoint(run, c, config.impl.checkpoint_keep);
  };

  // analysis.every_nth_step: the top Hessian eigenvalue at steps N, 2N, ... and the last.
  const AnalysisOptions analysis = analysis_options(config, trainer.channels_last());
  auto curvature_due = [&](int64_t step) {
    return analysis.every_nth_step > 0 && (step % analysis.every_nth_step == 0 || step == config.hyp.steps);
  };
  Progress progress(config.name, config.hyp.steps, options.progress && comm->is_root());
  try {
    if (!finished) {
      trainer.train([&](const StepRecord& r) {
        nlohmann::json record = r.to_json();
        if (curvature_due(r.step)) record.update(curvature_fields(trainer, analysis, *comm));
        so_far.add(writer ? writer->append_metrics(record) : record.dump() + "\n", record);
        progress.update(r);
        const int64_t every = config.impl.checkpoint_every;
        if (every > 0 && r.step % every == 0 && r.step < config.hyp.steps) checkpoint(false);
      });
      checkpoint(true);
    }
  } catch (const DivergenceError& e) {
    progress.finish();
    const std::string message =
        std::string(e.what()) + (last_checkpoint.empty()
                                     ? "; no checkpoint had been written"
                                     : "; the last good checkpoint is " + last_checkpoint);
    summary["status"] = "diverged";
    summary["error"] = message;
    summary["steps"] = so_far.last.is_null() ? 0 : so_far.last.value("step", int64_t{0});
    if (writer) writer->write_summary(summary);
    throw DivergenceError(message);
  } catch (const DistributedError& e) {
    // Rank 0 marks the run as failed; metrics and checkpoints up to the last completed step stay
    // as written, so `train --resume` can continue it.
    progress.finish();
    summary["status"] = "failed";
    summary["error"] = e.what();
    summary["steps"] = so_far.last.is_null() ? 0 : so_far.last.value("step", int64_t{0});
    if (writer) writer->write_summary(summary);
    throw;
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();

  summary["status"] = "completed";
  summary["steps"] = trainer.step();
  fill_final(summary, so_far, config.hyp.stop_at_val_accuracy);
  if (writer) {
    save_weights(trainer.model(), writer->weights_file());
    writer->write_summary(summary);
  }
  return summary;
}

}  // namespace fullbatch
