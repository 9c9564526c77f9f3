// The full-batch step, as the paper and its reference implementation compute it:
//   1. (acc_strength only) G, the mean gradient of a plain pre-pass over the step's blocks;
//   2. the full gradient: the mean over every chunk of every block (hyp.sub_batch) of the chunk's
//      gradient with its penalty (optim/regularizer.h) and its own clipping (hyp.batch_clip);
//   3. the full gradient's norm is recorded, then it is clipped and noised;
//   4. one optimizer step (weight decay is added there, never clipped), the EMA follows. An
//      optimizer that needs more gradients (SAM, L-BFGS) repeats 1-3 through its closure.
#include <torch/torch.h>

#include "fullbatch/common/rng.h"
#include "fullbatch/models/block_batchnorm.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/training/block_pass.h"
#include "fullbatch/training/loss.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch {

StepRecord Trainer::full_batch_step(int64_t step, double lr) {
  model_->train();
  const std::vector<torch::Tensor> blocks = block_order(order_settings(step), step);
  StepRecord record;
  BlockStats stats = full_gradient(step, lr, blocks, 0, record.grad_norm);
  // Optimizers that look again (SAM's second gradient, L-BFGS's line search) evaluate the full
  // gradient anew at their current weights: a fresh pass over the same blocks, as the reference's
  // closure is, each with its own augmentation draw and noise.
  uint64_t evaluations = 1;
  optimizer_->step(lr, [&] {
    double norm = 0;
    BlockStats again = full_gradient(step, lr, blocks, evaluations++, norm);
    return reduce_stats(again).loss_sum / static_cast<double>(blocks.size());
  });
  if (evaluations > 1) extra_passes_ += static_cast<double>(evaluations - 1) * passes_per_step();
  if (ema_) ema_->update();

  const StatTotals totals = reduce_stats(stats);
  const double images = static_cast<double>(blocks.size() * options_.order.batch_size);
  record.train_loss = totals.loss_sum / static_cast<double>(blocks.size());
  record.train_accuracy = 100.0 * totals.correct / images;
  record.clipped_blocks = totals.clipped;
  return record;
}

// Evaluation k of the step's full gradient into .grad (k = 0 is the step's own; an optimizer's
// closure asks for more): the pre-pass (acc_strength), the blocks, then norm, clipping and noise.
// Evaluation k draws augmentation 2k for the blocks and 2k + 1 for the pre-pass.
Trainer::BlockStats Trainer::full_gradient(int64_t step, double lr, const std::vector<torch::Tensor>& blocks,
                                           uint64_t evaluation, double& grad_norm) {
  const TensorList prepass = options_.gradient.reg.acc_strength != 0.0
                                 ? prepass_gradient(step, blocks, 2 * evaluation + 1)
                                 : TensorList{};
  BlockStats stats = accumulate_full_gradient(step, lr, blocks, prepass, 2 * evaluation);
  grad_norm = clip_and_add_noise(Loop::kFullBatch, step, evaluation);
  return stats;
}

// Zeroes the gradient, adds weight 1/B times each of this rank's blocks, sums over ranks. With
// impl.blocks_per_pass = K (where the step allows it, blocks_per_pass_), K blocks at a time go
// through one forward/backward pass.
Trainer::BlockStats Trainer::accumulate_full_gradient(int64_t step, double lr,
                                                      const std::vector<torch::Tensor>& blocks,
                                                      const TensorList& prepass_gradient,
                                                      uint64_t draw) {
  zero_grads();
  BlockStats stats = zero_stats();
  sum_over_block_groups(
      *comm_, static_cast<int64_t>(blocks.size()), blocks_per_pass_,
      [&](const std::vector<int64_t>& group, double weight) {
        std::vector<Block> loaded;
        for (int64_t b : group)
          loaded.push_back(source_->block(blocks[b], static_cast<uint64_t>(step), b, 0, -1, draw));
        if (loaded.size() > 1) return accumulate_blocks_together(loaded, weight, stats);
        accumulate_block(Loop::kFullBatch, loaded[0], lr, weight, stats,
                         penalty_for_block(step, static_cast<size_t>(group[0])), prepass_gradient);
      },
      [&] { return gradient_buffers(); });
  return stats;
}

// Blocks of equal size through one forward/backward pass, each normalized by its own batch
// statistics (models/block_batchnorm.h): weight times the sum of their mean losses, whose gradient
// is what one block after another would add, to float rounding. Only the plain gradient groups
// (blocks_per_pass_ is 1 otherwise). A shorter block (the last of a ragged split) goes alone.
void Trainer::accumulate_blocks_together(const std::vector<Block>& blocks, double weight,
                                         BlockStats& stats) {
  const int64_t n = blocks[0].labels.size(0);
  std::vector<torch::Tensor> inputs, labels;
  for (const Block& block : blocks) {
    if (block.labels.size(0) != n) {
      accumulate_block(Loop::kFullBatch, block, 0.0, weight, stats, GradRegSettings{}, {});
      continue;
    }
    inputs.push_back(block.inputs);
    labels.push_back(block.labels);
  }
  const int64_t k = static_cast<int64_t>(inputs.size());
  const torch::Tensor x = torch::cat(inputs), y = torch::cat(labels);
  ForwardResult out;
  {
    BlockGroups groups(*model_, k);
    out = forward(x, y);
  }
  // The mean over k equal blocks is the mean of their means; each block's weighs `weight`.
  (out.loss * (weight * static_cast<double>(k))).backward();
  stats.loss_sum += out.loss.detach() * static_cast<double>(k);
  stats.correct += out.logits.detach().argmax(1).eq(y).sum();
}

// impl.blocks_per_pass where the full-batch step can push blocks through one pass: its plain
// gradient (no penalty, chunks, per-chunk clipping or float64 accumulator, each of which needs a
// block's own gradient; no autocast, not yet checked), and a model whose BatchNorm layers can
// split a batch into blocks. 1 otherwise: the step is then exactly the block-by-block one.
int64_t Trainer::groupable_blocks_per_pass() const {
  const int64_t k = options_.execution.blocks_per_pass;
  const GradientOptions& g = options_.gradient;
  const bool whole_blocks = g.sub_batch <= 0 || options_.order.batch_size / g.sub_batch <= 1;
  const bool plain = !g.reg.on() && g.clip.block_max_norm <= 0 && whole_blocks &&
                     !execution_.float64_accumulation && execution_.autocast == torch::kFloat;
  return k > 1 && plain && can_group_blocks(*model_) ? k : 1;
}

// The penalty block b of step s gets: all of it, or, with hyp.grad_reg.every_nth_block = N, none
// unless (b + s) % N == 0, then its term scaled by N. Rotating with the step, so every block is
// penalized once in N steps and the term's mean over steps is the full penalty's.
GradRegSettings Trainer::penalty_for_block(int64_t step, size_t block) const {
  GradRegSettings reg = options_.gradient.reg;
  const int64_t n = options_.gradient.reg_every_nth_block;
  if (n <= 1) return reg;
  if ((static_cast<int64_t>(block) + step) % n != 0) return GradRegSettings{0.0, 0.0, reg.eps, reg.implementation};
  reg.term_scale = static_cast<double>(n);
  return reg;
}

// Adds `weight` times the block's gradient. Full batch: the mean over the block's chunks, each
// penalized (`reg`) and clipped on its own. An SGD batch: whole, penalized, as the reference's
// SGD loop does (no chunks, no batch_clip).
void Trainer::accumulate_block(Loop loop, const Block& block, double lr, double weight,
                               BlockStats& stats, const GradRegSettings& reg,
                               const TensorList& prepass_gradient) {
  const bool full_batch = loop == Loop::kFullBatch;
  const GradientOptions& g = options_.gradient;
  const int64_t n = block.labels.size(0);
  const int64_t chunks = full_batch && g.sub_batch > 0 ? std::max<int64_t>(n / g.sub_batch, 1) : 1;
  const bool clip_chunks = full_batch && g.clip.block_max_norm > 0;
  if (!reg.on() && !clip_chunks && chunks == 1 && accumulator_.empty()) {
    // The fast path: autograd accumulates weight * block gradient straight into .grad.
    ForwardResult out = forward(block.inputs, block.labels);
    (out.loss * weight).backward();
    stats.loss_sum += out.loss.detach();
    stats.correct += out.logits.detach().argmax(1).eq(block.labels).sum();
    return;
  }
  // torch.chunk's split: pieces of ceil(n / chunks), possibly fewer than asked for.
  const std::vector<torch::Tensor> xs = block.inputs.chunk(chunks, 0);
  const std::vector<torch::Tensor> ys = block.labels.chunk(chunks, 0);
  const double share = 1.0 / static_cast<double>(xs.size());
  for (size_t c = 0; c < xs.size(); ++c) {
    BlockGradient part = regularized_block_gradient([&] { return forward(xs[c], ys[c]); }, params_,
                                                    lr, reg, prepass_gradient);
    torch::NoGradGuard no_grad;
    if (clip_chunks) {
      torch::Tensor norm = clip_to_norm(part.grads, g.clip.block_max_norm, g.clip.norm_type);
      stats.clipped += norm.item<double>() > g.clip.block_max_norm ? 1 : 0;
    }
    add_to_gradient(part.grads, weight * share);
    stats.loss_sum += part.loss * share;
    stats.correct += part.logits.argmax(1).eq(ys[c]).sum();
  }
}

void Trainer::add_to_gradient(const TensorList& grads, double weight) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!accumulator_.empty()) {
      accumulator_[i].add_(grads[i].to(torch::kFloat64), weight);
    } else {
      params_[i].mutable_grad().add_(grads[i], weight);
    }
  }
}

// hyp.grad_reg.acc_strength: G, the mean plain gradient over the step's blocks (each clipped by
// hyp.batch_clip), from a pass of its own with a new augmentation draw, as the reference's
// second pass over its loader. The pass runs in training mode (BatchNorm statistics move).
TensorList Trainer::prepass_gradient(int64_t step, const std::vector<torch::Tensor>& blocks,
                                     uint64_t draw) {
  zero_grads();
  const ClipSettings& clip = options_.gradient.clip;
  TensorList grads;
  sum_over_blocks(
      *comm_, static_cast<int64_t>(blocks.size()),
      [&](int64_t b, double weight) {
        Block block = source_->block(blocks[b], static_cast<uint64_t>(step), b, 0, -1, draw);
        BlockGradient g = block_gradient([&] { return forward(block.inputs, block.labels); }, params_);
        if (clip.block_max_norm > 0) clip_to_norm(g.grads, clip.block_max_norm, clip.norm_type);
        add_to_gradient(g.grads, weight);
      },
      [&] { return grads = gradient_buffers(); });
  TensorList full = clone_detached(grads);
  zero_grads();
  return full;
}

// Norm (returned, before clipping), clipping and, in full-batch mode, noise of the reduced
// gradient. SGD clips with the l2 norm (torch's clip_grad_norm_) and adds no noise, as the
// reference's SGD loop. A step's later evaluations (an optimizer's closure) draw noise of their own.
double Trainer::clip_and_add_noise(Loop loop, int64_t step, uint64_t evaluation) {
  const GradientOptions& g = options_.gradient;
  const bool full_batch = loop == Loop::kFullBatch;
  torch::NoGradGuard no_grad;
  TensorList grads = gradient_buffers();
  torch::Tensor norm = global_norm(grads, 2.0);
  if (g.clip.max_norm > 0) clip_to_norm(grads, g.clip.max_norm, full_batch ? g.clip.norm_type : 2.0);
  if (full_batch && g.noise.any()) {
    auto gen = evaluation == 0
                   ? keyed_generator(options_.seed, Stream::kNoise, {static_cast<uint64_t>(step)})
                   : keyed_generator(options_.seed, Stream::kNoise, {static_cast<uint64_t>(step), evaluation});
    add_gradient_noise(grads, g.noise, gen);
  }
  if (!accumulator_.empty())
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad().copy_(grads[i]);
  return norm.item<double>();
}

}  // namespace fullbatch
