#pragma once
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/config/config.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/data/data_order.h"
#include "fullbatch/data/dataset.h"
#include "fullbatch/distributed/communicator.h"
#include "fullbatch/models/model.h"
#include "fullbatch/optim/sgd.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/optim/schedule.h"

namespace fullbatch {

// What one step (a full-batch pass, or an SGD epoch) measured.
struct StepRecord {
  int64_t step = 0;  // 1-based
  double epoch = 0;  // passes over the training samples so far
  double lr = 0;
  double train_loss = 0;
  double train_accuracy = 0;  // percent
  double grad_norm = 0;       // full gradient before clipping (SGD: mean over the epoch's steps)
  int64_t clipped_blocks = 0;
  double step_time_s = 0;
  double time_s = 0;  // cumulative training wall time
  double images_per_s = 0;
  std::optional<double> val_loss;
  std::optional<double> val_accuracy;  // percent

  nlohmann::json to_json() const;
};

struct Evaluation {
  double loss = 0;
  double accuracy = 0;  // percent
  int64_t images = 0;
};

// Per-step training statistics, kept on the device until the step ends.
struct BlockStats {
  torch::Tensor loss_sum;
  torch::Tensor correct;
  int64_t clipped = 0;
};

// Resolves impl.device ("auto" picks CUDA when present).
torch::Device resolve_device(const std::string& device);

// Owns everything a run changes: model, optimizer, EMA weights, step counter. Random numbers are
// keyed by (seed, step, block), so this state plus the config is all a checkpoint needs.
class Trainer {
 public:
  Trainer(Config config, std::shared_ptr<Communicator> comm);

  const Config& config() const { return config_; }
  Classifier& model() { return *model_; }
  ModelPtr model_ptr() { return model_; }
  const Dataset& data() const { return data_; }
  const torch::Device& device() const { return device_; }
  bool channels_last() const { return channels_last_; }  // impl.channels_last resolved
  const BlockSource& source() const { return *source_; }
  int64_t step() const { return step_; }  // steps completed
  int64_t train_images_per_step() const;
  double passes_per_step() const;

  // One step (full-batch pass or SGD epoch, as the config says for this step).
  StepRecord train_step();
  // Runs the remaining steps; `on_step` sees each record (metrics file, progress).
  // Throws UserError when the loss diverges (after on_step has seen nothing of that step).
  void train(const std::function<void(const StepRecord&)>& on_step);

  Evaluation evaluate();
  bool should_validate(int64_t step_one_based) const;
  // Off: train_step never evaluates (the benchmark times training alone).
  void set_validation(bool on) { validation_ = on; }

  // The state a checkpoint must hold, beside the config.
  std::map<std::string, torch::Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);

 private:
  StepRecord full_batch_step(int64_t step, double lr);
  StepRecord sgd_epoch(int64_t epoch, double lr);
  // Gradient of one block (sub-blocks, regularizer, per-block clipping) into `acc` * weight.
  void accumulate_block(const Block& block, double lr, double weight, torch::Tensor& loss_sum,
                        torch::Tensor& correct, int64_t& clipped);
  ForwardResult forward(const torch::Tensor& inputs, const torch::Tensor& labels);
  bool stochastic_at(int64_t step) const;
  OrderSettings order_settings(int64_t step) const;
  void zero_grads();
  // Zeroes the gradient, accumulates this rank's blocks, all-reduces over ranks.
  BlockStats accumulate_blocks(int64_t step, double lr, const std::vector<torch::Tensor>& blocks);
  void regularize_full_gradient(int64_t step, double lr, const std::vector<torch::Tensor>& blocks);
  std::vector<torch::Tensor> gradient_buffers();
  // Norm (recorded), clipping and noise of the reduced full gradient.
  void finish_gradient(int64_t noise_key, StepRecord& record);
  void update_ema();
  void average_batchnorm_buffers();

  Config config_;
  std::shared_ptr<Communicator> comm_;
  torch::Device device_;
  Dataset data_;
  std::unique_ptr<BlockSource> source_;
  ModelPtr model_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<Sgd> optimizer_;
  ScheduleSettings schedule_;
  GradRegSettings grad_reg_;
  std::vector<torch::Tensor> accumulator_;  // float64 accumulation only
  std::vector<torch::Tensor> ema_;          // parameters then buffers; empty unless evaluate_ema
  torch::ScalarType autocast_ = torch::kFloat;  // impl.mixed_precision
  bool channels_last_ = false;                  // impl.channels_last
  bool validation_ = true;
  int64_t step_ = 0;
  int64_t steps_at_full_accuracy_ = 0;
  double elapsed_s_ = 0;
};

}  // namespace fullbatch
