#include "fullbatch/analysis/objective.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"
#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/training/block_pass.h"
#include "fullbatch/training/loss.h"

namespace fullbatch {

ModuleStateGuard::ModuleStateGuard(torch::nn::Module& module)
    : module_(module), training_(module.is_training()) {
  torch::NoGradGuard no_grad;
  for (auto& b : module.buffers()) {
    buffers_.push_back(b);
    saved_.push_back(b.clone());
  }
}

ModuleStateGuard::~ModuleStateGuard() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i].copy_(saved_[i]);
  module_.train(training_);
}

std::vector<double> sum_over_ranks(Communicator& comm, std::vector<double> values,
                                   const torch::Device& device) {
  if (comm.world_size() == 1 || values.empty()) return values;
  torch::Tensor t = torch::tensor(values, torch::kFloat64).to(device);
  std::vector<torch::Tensor> list{t};
  comm.all_reduce_sum(list);
  torch::Tensor host = list[0].cpu();
  return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
}

void sum_over_ranks(Communicator& comm, TensorList& tensors) {
  if (comm.world_size() > 1) comm.all_reduce_sum(tensors);
}

TrainingObjective::TrainingObjective(Classifier& model, const Dataset& data, ObjectiveOptions options,
                                     Communicator& comm)
    : model_(model),
      data_(data),
      options_(options),
      comm_(comm),
      source_(data, BlockSourceOptions{/*augment=*/false, 0, 0, 0, options.channels_last}) {
  std::vector<std::string> names;
  for (auto& item : model.named_parameters())
    if (item.value().requires_grad()) {
      params_.push_back(item.value());
      names.push_back(item.key());
    }
  if (options.with_weight_decay) decays_ = parameter_weight_decays(names, options.weight_decay_of);
  const int64_t available = data.train.size();
  images_ = options.data_size > 0 ? std::min(options.data_size, available) : available;
  if (images_ == 0) throw UserError("analysis: the training set is empty (data.size, analysis.data_size)");
  if (options.block_size < 1) throw UserError("analysis: data.batch_size must be >= 1");
  for (int64_t begin = 0; begin < images_; begin += options.block_size)
    bounds_.emplace_back(begin, std::min(begin + options.block_size, images_));
}

Block TrainingObjective::make_block(int64_t b) const {
  const auto [begin, end] = bounds_[b];
  return source_.block(torch::arange(begin, end, torch::kLong), 0, static_cast<uint64_t>(b));
}

void TrainingObjective::visit_blocks(const WeightedVisit& visit, const std::function<TensorList()>& sums) {
  ModuleStateGuard guard(model_);
  // Callers may sit inside a no-grad scope (the trainer's step hook); the analyses need graphs.
  torch::AutoGradMode enable_grad(true);
  model_.train(options_.batchnorm_train);
  const double smoothing = options_.label_smoothing;
  sum_over_blocks(
      comm_, num_blocks(),
      [&](int64_t b, double weight) {
        const Block block = make_block(b);
        BlockForward forward = [&]() {
          torch::Tensor logits = model_.forward(block.inputs);
          return ForwardResult{training_loss(logits, block.labels, smoothing), logits};
        };
        visit(b, weight, block, forward);
      },
      sums);
}

void TrainingObjective::for_each_block(const std::function<void(int64_t, const Block&, const BlockForward&)>& visit) {
  visit_blocks([&](int64_t b, double, const Block& block, const BlockForward& forward) { visit(b, block, forward); },
               [] { return TensorList{}; });
}

ObjectiveValue TrainingObjective::value(bool with_gradient) {
  double loss_sum = 0, correct = 0;
  TensorList gradient;
  if (with_gradient)
    for (const auto& p : params_) gradient.push_back(torch::zeros_like(p));
  visit_blocks(
      [&](int64_t, double weight, const Block& block, const BlockForward& forward) {
        const torch::Tensor& labels = block.labels;
        ForwardResult out;
        if (with_gradient) {
          BlockGradient g = block_gradient(forward, params_);
          torch::NoGradGuard no_grad;
          for (size_t i = 0; i < gradient.size(); ++i) gradient[i].add_(g.grads[i], weight);
          out = {g.loss, g.logits};
        } else {
          torch::NoGradGuard no_grad;
          out = forward();
        }
        loss_sum += out.loss.item<double>() * weight;
        correct += out.logits.argmax(1).eq(labels.to(out.logits.device())).sum().item<double>();
      },
      [&] { return gradient; });
  const torch::Device device = params_.empty() ? torch::Device(torch::kCPU) : params_[0].device();
  const std::vector<double> totals = sum_over_ranks(comm_, {loss_sum, correct}, device);
  double loss = totals[0];
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < decays_.size(); ++i) {
    if (decays_[i] == 0) continue;
    loss += decays_[i] / 2 * params_[i].detach().to(torch::kFloat64).pow(2).sum().item<double>();
    if (with_gradient) gradient[i].add_(params_[i].detach(), decays_[i]);
  }
  return {loss, 100.0 * totals[1] / images_, std::move(gradient)};
}

TensorList TrainingObjective::hessian_vector_product(const TensorList& v) {
  TensorList hv;
  for (const auto& p : params_) hv.push_back(torch::zeros_like(p));
  visit_blocks(
      [&](int64_t, double weight, const Block&, const BlockForward& forward) {
        TensorList part = exact_hessian_vector_product(forward, params_, v);
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < hv.size(); ++i) hv[i].add_(part[i], weight);
      },
      [&] { return hv; });
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < decays_.size(); ++i)
    if (decays_[i] != 0) hv[i].add_(v[i].to(hv[i].dtype()), decays_[i]);
  return hv;
}

namespace {

// BatchNorm layers of one dimensionality: momentum set to "cumulative average" and running
// statistics reset; `restore` puts the momentum back.
template <typename Holder>
void reset_for_average(torch::nn::Module& module, std::vector<std::function<void()>>& restore) {
  using Impl = typename Holder::Impl;
  for (auto& m : module.modules(/*include_self=*/true))
    if (auto* bn = m->as<Impl>()) {
      const auto momentum = bn->options.momentum();
      bn->options.momentum(c10::nullopt);
      bn->reset_running_stats();
      restore.push_back([bn, momentum] { bn->options.momentum(momentum); });
    }
}

}  // namespace

void TrainingObjective::recompute_batchnorm_statistics() {
  torch::NoGradGuard no_grad;
  const bool training = model_.is_training();
  std::vector<std::function<void()>> restore;
  reset_for_average<torch::nn::BatchNorm1d>(model_, restore);
  reset_for_average<torch::nn::BatchNorm2d>(model_, restore);
  reset_for_average<torch::nn::BatchNorm3d>(model_, restore);
  reset_for_average<BlockBatchNorm2d>(model_, restore);
  if (restore.empty()) return;
  model_.train(true);
  int64_t mine = 0;
  for_each_owned_block(comm_, num_blocks(), [&](int64_t b, double) {
    model_.forward(make_block(b).inputs);
    ++mine;
  });
  model_.train(training);
  for (auto& r : restore) r();
  // Each rank holds the average over its own blocks: weight by the block count and sum.
  if (comm_.world_size() > 1) {
    TensorList stats;
    for (auto& item : model_.named_buffers())
      if (item.value().is_floating_point()) stats.push_back(item.value());
    for (auto& s : stats) s.mul_(static_cast<double>(mine) / static_cast<double>(num_blocks()));
    comm_.all_reduce_sum(stats);
  }
}

}  // namespace fullbatch
