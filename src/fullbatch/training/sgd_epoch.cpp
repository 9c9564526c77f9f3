// One epoch of mini-batch SGD, the baseline, as the reference's SGD loop: a step per batch with
// the batch's (penalized) gradient and l2 clipping of it when hyp.grad_clip is set; no chunks,
// no per-block clipping and no gradient noise; the learning rate and the EMA change once per
// epoch.
#include <torch/torch.h>

#include "fullbatch/training/trainer.h"

namespace fullbatch {

// The batch's (penalized) gradient into .grad, summed over ranks and clipped; returns its norm.
double Trainer::batch_gradient(const Block& block, double lr, int world, BlockStats& stats) {
  zero_grads();
  accumulate_block(Loop::kSgdBatch, block, lr, 1.0 / world, stats, options_.gradient.reg, {});
  TensorList grads = gradient_buffers();
  comm_->all_reduce_sum(grads);
  return clip_and_add_noise(Loop::kSgdBatch, 0);
}

StepRecord Trainer::sgd_epoch(int64_t epoch, double lr) {
  model_->train();
  const std::vector<torch::Tensor> batches = block_order(order_settings(epoch), epoch);
  const int64_t per_rank = options_.order.batch_size;
  const int world = comm_->world_size();
  BlockStats stats = zero_stats();
  StepRecord record;
  for (size_t k = 0; k < batches.size(); ++k) {
    torch::Tensor mine = batches[k].slice(0, comm_->rank() * per_rank, (comm_->rank() + 1) * per_rank);
    Block block = source_->block(mine, static_cast<uint64_t>(epoch), k, comm_->rank() * per_rank,
                                 per_rank * world);
    record.grad_norm += batch_gradient(block, lr, world, stats);
    // A closure (SAM, L-BFGS) re-evaluates the same batch at the optimizer's weights.
    int64_t evaluations = 1;
    optimizer_->step(lr, [&] {
      BlockStats again = zero_stats();
      batch_gradient(block, lr, world, again);
      ++evaluations;
      return reduce_stats(again).loss_sum / world;
    });
    if (evaluations > 1)
      extra_passes_ += static_cast<double>((evaluations - 1) * per_rank * world) /
                       static_cast<double>(data_.train.size());
  }
  if (ema_) ema_->update();
  const StatTotals totals = reduce_stats(stats);
  const double steps = static_cast<double>(batches.size());
  const double images = steps * static_cast<double>(per_rank * world);
  record.train_loss = totals.loss_sum / (steps * world);
  record.train_accuracy = 100.0 * totals.correct / images;
  record.grad_norm /= steps;
  record.clipped_blocks = totals.clipped;
  return record;
}

}  // namespace fullbatch
