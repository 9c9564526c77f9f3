#include "fullbatch/training/run.h"

#include <optional>

#include "fullbatch/common/error.h"
#include "fullbatch/io/progress.h"
#include "fullbatch/io/run_writer.h"
#include "fullbatch/io/weights.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch {
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
          {"device", trainer.device().str()}};
}

}  // namespace

nlohmann::json run_training(const Config& config, const RunOptions& options,
                            std::shared_ptr<Communicator> comm) {
  if (!comm) comm = std::make_shared<LocalCommunicator>();
  // Refuse an occupied folder before the (slow) data loading, but create nothing until the
  // config and the data have been checked, so a bad input leaves no half-made run behind.
  if (comm->is_root()) RunWriter::check_available(options.out_dir, options.resume);
  Trainer trainer(config, comm);
  std::optional<RunWriter> writer;
  if (comm->is_root()) {
    writer.emplace(options.out_dir, options.resume);
    writer->write_config(config);
  }
  nlohmann::json summary = base_summary(config, trainer);
  if (writer) writer->write_summary(summary);

  Progress progress(config.name, config.hyp.steps, options.progress && comm->is_root());
  std::optional<StepRecord> last;
  double images = 0;
  try {
    trainer.train([&](const StepRecord& r) {
      if (writer) writer->append_metrics(r.to_json());
      progress.update(r);
      images += r.images_per_s * r.step_time_s;
      last = r;
    });
  } catch (const DivergenceError& e) {
    progress.finish();
    summary["status"] = "diverged";
    summary["error"] = e.what();
    summary["steps"] = last ? last->step : 0;
    if (writer) writer->write_summary(summary);
    throw;
  } catch (const DistributedError& e) {
    // Rank 0 marks the run as failed; metrics up to the last completed step stay as written.
    progress.finish();
    summary["status"] = "failed";
    summary["error"] = e.what();
    summary["steps"] = last ? last->step : 0;
    if (writer) writer->write_summary(summary);
    throw;
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();

  summary["status"] = "completed";
  summary["steps"] = trainer.step();
  if (last) {
    summary["epochs"] = last->epoch;
    summary["final_val_accuracy"] = last->val_accuracy.value_or(0.0);
    summary["final_val_loss"] = last->val_loss.value_or(0.0);
    summary["final_train_accuracy"] = last->train_accuracy;
    summary["final_train_loss"] = last->train_loss;
    summary["total_time_s"] = last->time_s;
    summary["images_per_s"] = last->time_s > 0 ? images / last->time_s : 0.0;
  }
  if (writer) {
    save_weights(trainer.model(), writer->path("model.pt"));
    writer->write_summary(summary);
  }
  return summary;
}

}  // namespace fullbatch
