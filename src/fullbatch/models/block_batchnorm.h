#pragma once
// BatchNorm2d that can normalize several blocks of one batch each with its own statistics
// ("ghost" batch norm), so the full-batch step can push K blocks through one forward/backward pass
// (impl.blocks_per_pass) without changing the objective: with groups = K, each of K equal blocks
// stacked along the batch goes through torch::nn::BatchNorm2d's computation on its own, so its
// output and the running statistics are those of K separate passes, bit for bit; only the layers
// between the BatchNorms see the whole stack. With groups = 1 (the default) or in eval mode it is
// torch::nn::BatchNorm2d exactly, except that a channels-last float32 CPU input normalized by its
// batch statistics goes through channels_last_batch_norm (statistics summed in double, where
// libtorch's channels-last kernel loses accuracy: models/channels_last_batchnorm.h). Every
// BatchNorm of the model zoo is one; a model holding another kind (a TorchScript module) cannot
// group blocks, and the trainer then passes one block at a time.
#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <ostream>

#include "fullbatch/models/model.h"

namespace fullbatch {

// Holds what torch::nn::BatchNorm2d holds, registered in its order under its names (weight, bias,
// running_mean, running_var, num_batches_tracked), and runs the same kernel, so a state dict, an
// initialization and a step (in NCHW) are bit for bit those of torch::nn::BatchNorm2d. It is its
// own module, not a subclass: libtorch 1.13 does not export the members a derived class's vtables
// need.
class BlockBatchNorm2dImpl : public torch::nn::Cloneable<BlockBatchNorm2dImpl> {
 public:
  explicit BlockBatchNorm2dImpl(int64_t num_features)
      : BlockBatchNorm2dImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit BlockBatchNorm2dImpl(const torch::nn::BatchNormOptions& options);

  void reset() override;
  void reset_running_stats();
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  // x: [groups * n, C, H, W], blocks of n consecutive images.
  torch::Tensor forward(const torch::Tensor& x);
  void set_groups(int64_t groups) { groups_ = groups; }
  int64_t groups() const { return groups_; }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  torch::Tensor normalize(const torch::Tensor& x);
  torch::Tensor grouped_forward(const torch::Tensor& x);
  int64_t groups_ = 1;
};
TORCH_MODULE(BlockBatchNorm2d);

// Whether every BatchNorm in `model` can split its batch into blocks (true for a model without
// any BatchNorm, whose per-sample computation does not depend on the batch; false for a model
// whose layers are not all submodules, a TorchScript module).
bool can_group_blocks(Classifier& model);

// Sets every BlockBatchNorm2d of a model to `groups` for one pass, and back to 1 on destruction.
class BlockGroups {
 public:
  BlockGroups(torch::nn::Module& model, int64_t groups);
  ~BlockGroups();
  BlockGroups(const BlockGroups&) = delete;
  BlockGroups& operator=(const BlockGroups&) = delete;

 private:
  torch::nn::Module& model_;
};

}  // namespace fullbatch
