#pragma once
// The full-batch training loss as a function of the parameters, for analyses: the mean of the block
// losses (each block weighted 1/B, as training weights them) over fixed, unaugmented blocks of the
// training set (data.batch_size images each, in index order), its gradient, per-block gradients
// and exact Hessian-vector products by double backprop, each summed over the blocks. Every loop
// over the blocks is the trainer's pass (training/block_pass.h): the same dealing over ranks, the
// same weights, the same sum through the Communicator.
//
// BatchNorm runs in training mode (batch statistics: the loss training minimizes) or in eval mode
// (running statistics). Either way every buffer and the module's mode are restored bit for bit
// when a call returns, so analysing in the middle of a run changes nothing the run computes.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fullbatch/common/tensor_list.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/data/dataset.h"
#include "fullbatch/distributed/communicator.h"
#include "fullbatch/models/model.h"
#include "fullbatch/optim/optimizer.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/training/block_pass.h"
#include "fullbatch/training/loss.h"

namespace fullbatch {

struct ObjectiveOptions {
  int64_t block_size = 128;
  int64_t data_size = 0;       // first N training images; 0 = all the data holds
  bool batchnorm_train = true;
  double label_smoothing = 0.0;
  bool channels_last = false;
  // analysis.objective=loss+wd: each parameter's weight decay wd_i (as the optimizer applies it,
  // parameter_weight_decays) adds wd_i/2 ||theta_i||^2 to the loss, wd_i theta_i to the gradient
  // and wd_i v_i to H v. Off: the plain loss.
  bool with_weight_decay = false;
  OptimizerSettings weight_decay_of;  // the run's optimizer settings the decays come from
};

// The loss, accuracy and (when asked) gradient of the whole objective.
struct ObjectiveValue {
  double loss = 0;
  double accuracy = 0;  // percent
  TensorList gradient;  // mean over images; empty when not asked
};

class TrainingObjective {
 public:
  TrainingObjective(Classifier& model, const Dataset& data, ObjectiveOptions options,
                    Communicator& comm);

  Classifier& model() { return model_; }
  const TensorList& params() const { return params_; }
  int64_t images() const { return images_; }
  int64_t num_blocks() const { return static_cast<int64_t>(bounds_.size()); }
  int64_t block_images(int64_t b) const { return bounds_[b].second - bounds_[b].first; }
  // Each block's weight in the mean loss: 1/B, the trainer's (training/block_pass.h).
  double block_weight() const { return full_batch_block_weight(num_blocks()); }
  Communicator& comm() { return comm_; }

  ObjectiveValue value(bool with_gradient);
  // H v of the mean loss (plus the weight decay's wd v), exact (double backprop per block).
  TensorList hessian_vector_product(const TensorList& v);
  // Visits this rank's blocks with a forward closure in the analysis' BatchNorm mode, buffers
  // restored afterwards. `visit(block_index, block, forward)`.
  void for_each_block(const std::function<void(int64_t, const Block&, const BlockForward&)>& visit);
  // Recomputes every BatchNorm layer's running statistics from scratch over the blocks (training
  // mode, an equal-weight average over blocks and ranks; momentum restored afterwards), as
  // mode-connectivity work does after interpolating weights. Changes the buffers on purpose.
  void recompute_batchnorm_statistics();

 private:
  Block make_block(int64_t b) const;
  // The pass over this rank's blocks (training/block_pass.h) in the analysis' BatchNorm mode,
  // buffers restored afterwards, then `sums()` added over ranks: visit(b, weight, block, forward).
  using WeightedVisit = std::function<void(int64_t, double, const Block&, const BlockForward&)>;
  void visit_blocks(const WeightedVisit& visit, const std::function<TensorList()>& sums);

  Classifier& model_;
  const Dataset& data_;
  ObjectiveOptions options_;
  Communicator& comm_;
  BlockSource source_;
  TensorList params_;
  std::vector<std::pair<int64_t, int64_t>> bounds_;  // [begin, end) image indices per block
  int64_t images_ = 0;
  std::vector<double> decays_;  // per parameter; empty without weight decay
};

// Restores a module's buffers (BatchNorm running statistics) and training mode on destruction.
class ModuleStateGuard {
 public:
  explicit ModuleStateGuard(torch::nn::Module& module);
  ~ModuleStateGuard();
  ModuleStateGuard(const ModuleStateGuard&) = delete;
  ModuleStateGuard& operator=(const ModuleStateGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool training_;
  TensorList buffers_, saved_;
};

// Sums a list of doubles over ranks (float64 on the host's CPU, moved where the group needs it).
std::vector<double> sum_over_ranks(Communicator& comm, std::vector<double> values,
                                   const torch::Device& device);
// In place: the tensors summed over ranks.
void sum_over_ranks(Communicator& comm, TensorList& tensors);

}  // namespace fullbatch
