#include "fullbatch/models/block_batchnorm.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"
#include "fullbatch/models/channels_last_batchnorm.h"

namespace fullbatch {
namespace {

void set_all(torch::nn::Module& model, int64_t groups) {
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<BlockBatchNorm2dImpl*>(m.get())) bn->set_groups(groups);
}

}  // namespace

BlockBatchNorm2dImpl::BlockBatchNorm2dImpl(const torch::nn::BatchNormOptions& options)
    : options(options) {
  reset();
}

// torch::nn::BatchNorm2d's reset: the same tensors, registered in the same order.
void BlockBatchNorm2dImpl::reset() {
  const int64_t c = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::empty({c}));
    bias = register_parameter("bias", torch::empty({c}));
  } else {
    weight = register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({c}));
    running_var = register_buffer("running_var", torch::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    running_mean = register_buffer("running_mean", torch::Tensor());
    running_var = register_buffer("running_var", torch::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", torch::Tensor());
  }
  reset_parameters();
}

void BlockBatchNorm2dImpl::reset_running_stats() {
  if (!options.track_running_stats()) return;
  torch::NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void BlockBatchNorm2dImpl::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  torch::NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

torch::Tensor BlockBatchNorm2dImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "expected 4D input (got ", x.dim(), "D input)");
  if (groups_ > 1 && is_training()) return grouped_forward(x);
  return normalize(x);
}

// One block: torch::nn::BatchNorm2d's forward, step for step (its momentum, or the cumulative
// average 1 / num_batches_tracked when momentum is unset), through the same kernel call; with
// batch statistics of a channels-last float32 CPU tensor, through channels_last_batch_norm, whose
// statistics are summed in double (libtorch's channels-last kernel sums them in float).
torch::Tensor BlockBatchNorm2dImpl::normalize(const torch::Tensor& x) {
  double factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats() && num_batches_tracked.defined()) {
    num_batches_tracked += 1;
    factor = options.momentum().has_value() ? *options.momentum()
                                            : 1.0 / num_batches_tracked.item<double>();
  }
  const bool batch_statistics = is_training() || !options.track_running_stats();
  if (batch_statistics && wants_exact_channels_last_moments(x)) {
    const bool update = is_training() && options.track_running_stats();
    return channels_last_batch_norm(x, weight, bias, update ? running_mean : torch::Tensor(),
                                    update ? running_var : torch::Tensor(), factor, options.eps());
  }
  return torch::nn::functional::detail::batch_norm(x, running_mean, running_var, weight, bias,
                                                   batch_statistics, factor, options.eps());
}

// Each block of the stacked batch through the one-block forward in turn (a slice along the batch
// is a view), the results stacked again: the blocks' outputs, their gradients and the running
// statistics are those of separate passes, bit for bit; only the layers between BatchNorms see
// the whole stack.
torch::Tensor BlockBatchNorm2dImpl::grouped_forward(const torch::Tensor& x) {
  expects(x.size(0) % groups_ == 0,
          "BlockBatchNorm2d: the batch must hold `groups` blocks of equal size");
  std::vector<torch::Tensor> blocks = x.chunk(groups_, 0);
  for (torch::Tensor& block : blocks) block = normalize(block);
  return torch::cat(blocks);
}

void BlockBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "fullbatch::BlockBatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=";
  if (options.momentum().has_value())
    stream << *options.momentum();
  else
    stream << "None";
  stream << ", affine=" << (options.affine() ? "true" : "false")
         << ", track_running_stats=" << (options.track_running_stats() ? "true" : "false") << ")";
}

bool can_group_blocks(Classifier& model) {
  if (!model.layers_are_submodules()) return false;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (dynamic_cast<BlockBatchNorm2dImpl*>(m.get()) != nullptr) continue;
    if (m->as<torch::nn::BatchNorm1d>() || m->as<torch::nn::BatchNorm2d>() ||
        m->as<torch::nn::BatchNorm3d>())
      return false;
  }
  return true;
}

BlockGroups::BlockGroups(torch::nn::Module& model, int64_t groups) : model_(model) {
  set_all(model_, groups);
}

BlockGroups::~BlockGroups() {
  set_all(model_, 1);
}

}  // namespace fullbatch
