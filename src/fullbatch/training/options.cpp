#include "fullbatch/training/options.h"

namespace fullbatch {
namespace {

DataSpec data_spec(const Config& c) {
  DataSpec d;
  d.name = c.data.name, d.path = c.data.path;
  d.size = c.data.size, d.test_size = c.data.test_size;  // first N images; 0 = all
  d.pixels = c.data.pixels, d.resize = c.data.resize;    // image folders only
  return d;
}

// channels_last is the execution's, filled in by the trainer.
BlockSourceOptions block_options(const Config& c) {
  BlockSourceOptions b;
  b.augment = c.data.augmentations == Augmentation::kCropFlip;
  b.padding = c.data.crop_padding, b.fixed_rounds = c.data.fixed_augmentations;
  b.random_resized_crop = c.data.augmentations == Augmentation::kRandomResizedCrop;
  b.pixels = c.data.pixels;
  b.seed = c.seed;
  return b;
}

OrderOptions order_options(const Config& c) {
  OrderOptions o;
  o.batch_size = c.data.batch_size;
  o.stochastic = c.hyp.train_stochastic, o.semi_stochastic = c.hyp.train_semi_stochastic;
  o.shuffle = c.hyp.shuffle, o.with_replacement = c.hyp.sample_with_replacement;
  o.switch_to_stochastic_at = c.hyp.train_switch_stochastic;
  return o;
}

// in_channels and num_classes are the data's, filled in by the trainer.
ModelSpec model_spec(const Config& c) {
  ModelSpec m;
  m.name = c.model.name, m.width = c.model.width, m.path = c.model.path;
  m.zero_init_residual = c.model.zero_init_residual;
  return m;
}

ScheduleSettings schedule_settings(const Config& c) {
  ScheduleSettings s;
  s.base_lr = c.hyp.optim.lr, s.warmup = c.hyp.warmup;
  s.kind = c.hyp.scheduler, s.total_steps = c.hyp.steps;
  return s;
}

GradientOptions gradient_options(const Config& c) {
  const auto& r = c.hyp.grad_reg;
  GradientOptions g;
  // The penalty: alpha on each chunk's own gradient, beta along the pre-pass gradient G.
  g.reg.block_strength = r.block_strength, g.reg.acc_strength = r.acc_strength;
  g.reg.eps = r.eps, g.reg.implementation = r.implementation;
  g.reg_every_nth_block = r.every_nth_block;
  g.sub_batch = c.hyp.sub_batch;
  // Clipping: the full gradient, in its norm; each chunk (batch_clip).
  g.clip.max_norm = c.hyp.grad_clip, g.clip.norm_type = c.hyp.grad_clip_norm;
  g.clip.block_max_norm = c.hyp.batch_clip;
  g.noise.additive = c.hyp.grad_noise.additive;
  g.noise.multiplicative = c.hyp.grad_noise.multiplicative;
  g.label_smoothing = c.hyp.label_smoothing;
  return g;
}

EvalOptions eval_options(const Config& c) {
  EvalOptions e;
  e.every_nth_step = c.impl.validate_every_nth_step, e.batch_size = c.impl.eval_batch_size;
  e.test_time_flips = c.impl.test_time_flips;
  e.ema = c.hyp.evaluate_ema, e.ema_momentum = c.hyp.eval_ema_momentum;
  return e;
}

ExecutionOptions execution_options(const Config& c) {
  ExecutionOptions x;
  x.device = c.impl.device, x.threads = c.impl.threads;
  x.precision = c.impl.mixed_precision, x.accumulation = c.impl.accumulation_dtype;
  x.channels_last = c.impl.channels_last;
  x.deterministic = c.impl.deterministic, x.blocks_per_pass = c.impl.blocks_per_pass;
  return x;
}

}  // namespace

TrainerOptions trainer_options(const Config& c) {
  validate(c);
  check_model_name(c.model.name);
  TrainerOptions o;
  o.seed = c.seed;
  o.steps = c.hyp.steps;
  o.stop_at_full_training_accuracy = c.hyp.stop_at_full_training_accuracy;
  o.stop_at_val_accuracy = c.hyp.stop_at_val_accuracy;
  o.data = data_spec(c);
  o.blocks = block_options(c);
  o.order = order_options(c);
  o.model = model_spec(c);
  o.optimizer = c.hyp.optim;  // the optimizer's settings struct itself
  o.schedule = schedule_settings(c);
  o.gradient = gradient_options(c);
  o.eval = eval_options(c);
  o.execution = execution_options(c);
  return o;
}

}  // namespace fullbatch
