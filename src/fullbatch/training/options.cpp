#include "fullbatch/training/options.h"

#include <array>
#include <sstream>

#include "fullbatch/common/parse.h"

namespace fullbatch {
namespace {

// The numbers of a comma-separated list key; the key's check has already seen N of them.
template <size_t N>
std::array<double, N> numbers(const std::string& text) {
  std::array<double, N> out{};
  std::stringstream ss(text);
  std::string part;
  for (size_t i = 0; i < N && std::getline(ss, part, ','); ++i) parse_float(part, out[i]);
  return out;
}

// hyp.optim.* and hyp.optim_modification.* for make_optimizer; eps 0 means the optimizer's own
// reference default.
OptimizerSettings optimizer_settings(const Config& c) {
  const auto& o = c.hyp.optim;
  const auto& m = c.hyp.optim_modification;
  OptimizerSettings s;
  s.name = o.name;
  s.lr = o.lr;
  // Gradient Descent, and the gradient descent inside GD-AGC and Adaptive Gradient Descent
  s.momentum = o.momentum, s.weight_decay = o.weight_decay;
  s.nesterov = o.nesterov, s.dampening = o.dampening;
  s.only_linear_layers_weight_decay = c.hyp.only_linear_layers_weight_decay;
  // Adam (AdamW); eps is also L-BFGS's and GD-AGC's
  s.betas = numbers<2>(o.betas), s.eps = o.eps, s.amsgrad = o.amsgrad;
  // L-BFGS and its line search
  s.history_size = o.history_size, s.line_search = o.line_search, s.damping = o.damping;
  s.eta = o.eta, s.c1 = o.c1, s.c2 = o.c2, s.max_linesearches = o.max_linesearches;
  // FISTA, GD-AGC, Adaptive Gradient Descent
  s.fista_mod = numbers<3>(o.fista_mod);
  s.clipping = o.clipping;
  s.interval = o.interval, s.norm_type = o.norm_type;
  s.modification = {m.name, m.rho, m.trust_coefficient, m.eps};
  return s;
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
  o.data = {c.data.name, c.data.path, c.data.size, c.data.test_size};
  o.data.pixels = c.data.pixels;
  o.data.resize = c.data.resize;
  o.blocks = {c.data.augmentations == Augmentation::kCropFlip, c.data.crop_padding,
              c.data.fixed_augmentations, c.seed, false};
  o.blocks.random_resized_crop = c.data.augmentations == Augmentation::kRandomResizedCrop;
  o.blocks.pixels = c.data.pixels;
  o.order = {c.data.batch_size,   c.hyp.train_stochastic,        c.hyp.train_semi_stochastic,
             c.hyp.shuffle,       c.hyp.sample_with_replacement, c.hyp.train_switch_stochastic};
  o.model = {c.model.name, c.model.width, 3, 10, c.model.zero_init_residual, c.model.path};
  o.optimizer = optimizer_settings(c);
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
