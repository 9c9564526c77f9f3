// The full-batch step, as the paper writes it: the full gradient is the mean of the gradients
// of fixed blocks (each block's own penalty and clipping applied), the full gradient itself may
// be penalized, then it is clipped and noised, and the optimizer takes one step.
#include <torch/torch.h>

#include "fullbatch/common/rng.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch {

StepRecord Trainer::full_batch_step(int64_t step, double lr) {
  model_->train();
  const std::vector<torch::Tensor> blocks = block_order(order_settings(step), step);
  BlockStats stats = accumulate_full_gradient(step, lr, blocks);
  if (options_.gradient.full_reg.strength > 0 && lr > 0) regularize_full_gradient(step, lr, blocks);
  StepRecord record;
  record.grad_norm = clip_and_add_noise(step);
  optimizer_->step(lr);
  if (ema_) ema_->update();

  const StatTotals totals = reduce_stats(stats);
  const double images = static_cast<double>(blocks.size() * options_.order.batch_size);
  record.train_loss = totals.loss_sum / static_cast<double>(blocks.size());
  record.train_accuracy = 100.0 * totals.correct / images;
  record.clipped_blocks = totals.clipped;
  return record;
}

// Zeroes the gradient, adds weight 1/B times each of this rank's blocks, sums over ranks.
Trainer::BlockStats Trainer::accumulate_full_gradient(int64_t step, double lr,
                                                      const std::vector<torch::Tensor>& blocks) {
  zero_grads();
  const double weight = 1.0 / static_cast<double>(blocks.size());
  BlockStats stats = zero_stats();
  for (size_t b = 0; b < blocks.size(); ++b) {
    // Blocks are dealt round-robin; the block id, not the rank, keys its augmentation.
    if (static_cast<int>(b % comm_->world_size()) != comm_->rank()) continue;
    Block block = source_->block(blocks[b], static_cast<uint64_t>(step), b);
    accumulate_block(block, lr, weight, stats);
  }
  TensorList grads = gradient_buffers();
  comm_->all_reduce_sum(grads);
  return stats;
}

void Trainer::accumulate_block(const Block& block, double lr, double weight, BlockStats& stats) {
  const GradientOptions& g = options_.gradient;
  const int64_t n = block.labels.size(0);
  const bool per_block = g.block_reg.strength > 0 || g.clip.block_max_norm > 0 ||
                         (g.sub_batch > 0 && g.sub_batch < n) || !accumulator_.empty();
  if (!per_block) {
    // The fast path: autograd accumulates weight * block gradient straight into .grad.
    ForwardResult out = forward(block.inputs, block.labels);
    (out.loss * weight).backward();
    stats.loss_sum += out.loss.detach();
    stats.correct += out.logits.detach().argmax(1).eq(block.labels).sum();
    return;
  }
  TensorList block_grad = block_gradient_with_penalty(block, lr, stats);
  torch::NoGradGuard no_grad;
  if (g.clip.block_max_norm > 0) {
    torch::Tensor norm = clip_to_norm(block_grad, g.clip.block_max_norm, g.clip.norm_type);
    stats.clipped += norm.item<double>() > g.clip.block_max_norm ? 1 : 0;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!accumulator_.empty()) {
      accumulator_[i].add_(block_grad[i].to(torch::kFloat64), weight);
    } else {
      params_[i].mutable_grad().add_(block_grad[i], weight);
    }
  }
}

// The block's gradient as the share-weighted mean of its sub-blocks' penalized gradients
// (hyp.sub_batch; one sub-block when 0).
TensorList Trainer::block_gradient_with_penalty(const Block& block, double lr, BlockStats& stats) {
  const int64_t n = block.labels.size(0);
  const int64_t sub = options_.gradient.sub_batch > 0 ? std::min(options_.gradient.sub_batch, n) : n;
  TensorList block_grad;
  for (int64_t begin = 0; begin < n; begin += sub) {
    const int64_t end = std::min(n, begin + sub);
    const double share = static_cast<double>(end - begin) / static_cast<double>(n);
    torch::Tensor x = block.inputs.slice(0, begin, end);
    torch::Tensor y = block.labels.slice(0, begin, end);
    BlockGradient part = regularized_block_gradient([&] { return forward(x, y); }, params_, lr,
                                                    options_.gradient.block_reg);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < part.grads.size(); ++i) {
      if (block_grad.size() <= i) {
        block_grad.push_back(part.grads[i] * share);
      } else {
        block_grad[i].add_(part.grads[i], share);
      }
    }
    stats.loss_sum += part.loss * share;
    stats.correct += part.logits.argmax(1).eq(y).sum();
  }
  return block_grad;
}

// hyp.grad_reg.acc_strength: the penalty on the full gradient G. "The gradient at theta" is
// another pass over the same blocks (same augmentations: keyed by step and block).
void Trainer::regularize_full_gradient(int64_t step, double lr,
                                       const std::vector<torch::Tensor>& blocks) {
  TensorList g = clone_detached(gradient_buffers());
  auto gradient = [&] {
    accumulate_full_gradient(step, lr, blocks);
    return clone_detached(gradient_buffers());
  };
  auto hessian_vector = [&](const TensorList& v) {
    return full_hessian_vector_product(step, blocks, v);
  };
  ::fullbatch::regularize_full_gradient(g, gradient, hessian_vector, params_, lr,
                                        options_.gradient.full_reg);
  torch::NoGradGuard no_grad;
  TensorList buffers = gradient_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(g[i]);
}

// H v for the Hessian of the full loss (the mean block loss), exactly: each block's double
// backprop, weighted 1/B, summed over ranks.
TensorList Trainer::full_hessian_vector_product(int64_t step, const std::vector<torch::Tensor>& blocks,
                                                const TensorList& v) {
  TensorList v_params;
  for (size_t i = 0; i < v.size(); ++i) v_params.push_back(v[i].to(params_[i].scalar_type()));
  const double weight = 1.0 / static_cast<double>(blocks.size());
  TensorList total;
  for (const auto& p : params_) total.push_back(torch::zeros_like(p));
  for (size_t b = 0; b < blocks.size(); ++b) {
    if (static_cast<int>(b % comm_->world_size()) != comm_->rank()) continue;
    Block block = source_->block(blocks[b], static_cast<uint64_t>(step), b);
    TensorList hv = exact_hessian_vector_product(
        [&] { return forward(block.inputs, block.labels); }, params_, v_params);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < total.size(); ++i) total[i].add_(hv[i], weight);
  }
  comm_->all_reduce_sum(total);
  return total;
}

// Norm (returned, before clipping), clipping and noise of the reduced full gradient.
double Trainer::clip_and_add_noise(int64_t noise_key) {
  const GradientOptions& g = options_.gradient;
  torch::NoGradGuard no_grad;
  TensorList grads = gradient_buffers();
  torch::Tensor norm = global_norm(grads, 2.0);
  if (g.clip.max_norm > 0) clip_to_norm(grads, g.clip.max_norm, g.clip.norm_type);
  if (g.noise.any()) {
    auto gen = keyed_generator(options_.seed, Stream::kNoise, {static_cast<uint64_t>(noise_key)});
    add_gradient_noise(grads, g.noise, gen);
  }
  if (!accumulator_.empty())
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad().copy_(grads[i]);
  return norm.item<double>();
}

}  // namespace fullbatch
