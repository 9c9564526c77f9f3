#pragma once
// The Trainer owns everything a run changes (model, optimizer, EMA weights, step counter) and
// runs steps. A step is the paper's loop: a full-batch step (training/full_batch_step.cpp) or an
// SGD epoch (training/sgd_epoch.cpp). Random numbers are keyed by (seed, step, block), so this
// state plus the options is all a checkpoint needs; state_dict() lists it beside the owners'
// own state (optimizer, EMA).
//
// Constructing a Trainer changes nothing process-wide and prints nothing: call
// apply_process_settings (training/runtime.h) first, as run_training does.
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fullbatch/data/block_source.h"
#include "fullbatch/data/data_order.h"
#include "fullbatch/data/dataset.h"
#include "fullbatch/distributed/communicator.h"
#include "fullbatch/models/model.h"
#include "fullbatch/optim/optimizer.h"
#include "fullbatch/training/ema.h"
#include "fullbatch/training/evaluation.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/step_record.h"

namespace fullbatch {

// The model a run trains, built and initialized from the options for this data (its channels and
// classes), on the execution's device and memory format. Every rank builds the same weights.
ModelPtr build_model(const TrainerOptions& options, const Dataset& data, const Execution& execution);

class Trainer {
 public:
  Trainer(TrainerOptions options, std::shared_ptr<Communicator> comm);

  const TrainerOptions& options() const { return options_; }
  Classifier& model() { return *model_; }
  const Dataset& data() const { return data_; }
  const Execution& execution() const { return execution_; }
  const torch::Device& device() const { return execution_.device; }
  bool channels_last() const { return execution_.channels_last; }
  const BlockSource& source() const { return *source_; }
  int64_t step() const { return step_; }  // steps completed
  int64_t train_images_per_step() const;
  double passes_per_step() const;  // of one gradient evaluation; SAM and L-BFGS make several a step
  // Blocks per forward/backward pass of the full-batch step: impl.blocks_per_pass where the
  // step allows grouping (its plain gradient on a model whose BatchNorms split), else 1.
  int64_t blocks_per_pass() const { return blocks_per_pass_; }

  // One step (full-batch pass or SGD epoch, as the options say for this step).
  StepRecord train_step();
  // Runs the remaining steps; `on_step` sees each record (metrics file, progress).
  // Throws DivergenceError when the loss diverges (after on_step has seen nothing of that step).
  void train(const std::function<void(const StepRecord&)>& on_step);

  // The test set with the EMA weights when enabled, BatchNorm buffers averaged over ranks.
  Evaluation evaluate();
  // After steps 1, 1 + N, 1 + 2N, ... (N = impl.validate_every_nth_step) and the last.
  bool should_validate(int64_t step_one_based) const;
  // Off: train_step never evaluates (the benchmark times training alone).
  void set_validation(bool on) { validation_ = on; }

  // The state a checkpoint must hold, beside the config.
  std::map<std::string, torch::Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);

 private:
  // Loss and accuracy counts of the blocks a rank processed in one step, kept on the device.
  struct BlockStats {
    torch::Tensor loss_sum;
    torch::Tensor correct;
    int64_t clipped = 0;
  };
  // The same, summed over ranks and read to the host.
  struct StatTotals {
    double loss_sum = 0;
    double correct = 0;
    int64_t clipped = 0;
  };

  // Which loop a gradient belongs to. The full-batch step cuts each block into chunks
  // (hyp.sub_batch), clips each chunk (hyp.batch_clip), clips the full gradient in
  // hyp.grad_clip_norm and adds noise; an SGD batch is taken whole, clipped in l2, never noised,
  // as the reference's SGD loop does.
  enum class Loop { kFullBatch, kSgdBatch };

  // training/full_batch_step.cpp
  StepRecord full_batch_step(int64_t step, double lr);
  BlockStats full_gradient(int64_t step, double lr, const std::vector<torch::Tensor>& blocks,
                           uint64_t evaluation, double& grad_norm);
  BlockStats accumulate_full_gradient(int64_t step, double lr, const std::vector<torch::Tensor>& blocks,
                                      const TensorList& prepass_gradient, uint64_t draw);
  void accumulate_blocks_together(const std::vector<Block>& blocks, double weight, BlockStats& stats);
  int64_t groupable_blocks_per_pass() const;
  GradRegSettings penalty_for_block(int64_t step, size_t block) const;
  void accumulate_block(Loop loop, const Block& block, double lr, double weight, BlockStats& stats,
                        const GradRegSettings& reg, const TensorList& prepass_gradient);
  void add_to_gradient(const TensorList& grads, double weight);
  TensorList prepass_gradient(int64_t step, const std::vector<torch::Tensor>& blocks, uint64_t draw);
  double clip_and_add_noise(Loop loop, int64_t step, uint64_t evaluation = 0);
  // training/sgd_epoch.cpp
  StepRecord sgd_epoch(int64_t epoch, double lr);
  double batch_gradient(const Block& block, double lr, int world, BlockStats& stats);

  ForwardResult forward(const torch::Tensor& inputs, const torch::Tensor& labels);
  bool stochastic_at(int64_t step) const;
  OrderSettings order_settings(int64_t step) const;
  BlockStats zero_stats() const;
  StatTotals reduce_stats(const BlockStats& stats);
  void zero_grads();
  TensorList gradient_buffers();  // .grad of the parameters, or the float64 accumulator
  void average_batchnorm_buffers();

  TrainerOptions options_;
  std::shared_ptr<Communicator> comm_;
  Execution execution_;
  Dataset data_;
  std::unique_ptr<BlockSource> source_;
  ModelPtr model_;
  TensorList params_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<WeightAverage> ema_;  // hyp.evaluate_ema
  TensorList accumulator_;              // float64 accumulation only
  int64_t blocks_per_pass_ = 1;         // impl.blocks_per_pass where the step can group blocks
  bool validation_ = true;
  int64_t step_ = 0;
  int64_t steps_at_full_accuracy_ = 0;
  double elapsed_s_ = 0;
  double extra_passes_ = 0;  // passes of the optimizer's additional gradient evaluations (SAM, L-BFGS)
};

}  // namespace fullbatch
