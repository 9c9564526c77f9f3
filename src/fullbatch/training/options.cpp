#include "fullbatch/training/options.h"

namespace fullbatch {

TrainerOptions trainer_options(const Config& c) {
  validate(c);
  check_model_name(c.model.name);
  TrainerOptions o;
  o.seed = c.seed;
  o.steps = c.hyp.steps;
  o.stop_at_full_training_accuracy = c.hyp.stop_at_full_training_accuracy;
  o.data = {c.data.name, c.data.path, c.data.size, c.data.test_size};
  o.blocks = {c.data.augmentations == Augmentation::kCropFlip, c.data.crop_padding,
              c.data.fixed_augmentations, c.seed, false};
  o.order = {c.data.batch_size,   c.hyp.train_stochastic,        c.hyp.train_semi_stochastic,
             c.hyp.shuffle,       c.hyp.sample_with_replacement, c.hyp.train_switch_stochastic};
  o.model = {c.model.name, c.model.width, 3, 10, c.model.zero_init_residual};
  o.sgd = {c.hyp.optim.momentum, c.hyp.optim.weight_decay, c.hyp.optim.nesterov};
  o.schedule = {c.hyp.optim.lr, c.hyp.warmup, c.hyp.scheduler, c.hyp.steps};
  GradientOptions& g = o.gradient;
  g.reg = {c.hyp.grad_reg.block_strength, c.hyp.grad_reg.acc_strength, c.hyp.grad_reg.eps,
           c.hyp.grad_reg.implementation};
  g.sub_batch = c.hyp.sub_batch;
  g.reg_every_nth_block = c.hyp.grad_reg.every_nth_block;
  g.clip = {c.hyp.grad_clip, c.hyp.grad_clip_norm, c.hyp.batch_clip};
  g.noise = {c.hyp.grad_noise.additive, c.hyp.grad_noise.multiplicative};
  g.label_smoothing = c.hyp.label_smoothing;
  o.eval = {c.impl.validate_every_nth_step, c.impl.eval_batch_size, c.impl.test_time_flips,
            c.hyp.evaluate_ema, c.hyp.eval_ema_momentum};
  o.execution = {c.impl.device,        c.impl.threads,           c.impl.mixed_precision,
                 c.impl.channels_last, c.impl.accumulation_dtype, c.impl.deterministic};
  return o;
}

}  // namespace fullbatch
