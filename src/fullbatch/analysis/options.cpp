#include "fullbatch/analysis/options.h"

#include "fullbatch/common/parse.h"
#include "fullbatch/optim/schedule.h"
#include "fullbatch/training/options.h"

namespace fullbatch {

AnalysisOptions analysis_options(const Config& c, bool channels_last) {
  const auto& a = c.analysis;
  AnalysisOptions o;
  o.objective.block_size = c.data.batch_size;
  o.objective.data_size = a.data_size;
  o.objective.batchnorm_train = a.batchnorm == "train";
  o.objective.label_smoothing = c.hyp.label_smoothing;
  o.objective.channels_last = channels_last;
  o.objective.with_weight_decay = a.objective == "loss+wd";
  if (o.objective.with_weight_decay) o.objective.weight_decay_of = trainer_options(c).optimizer;
  o.curvature.lanczos = {a.eigenvalues, a.lanczos_iterations, a.tolerance, c.seed};
  o.curvature.trace_samples = a.trace_samples;
  o.record_trace = a.record_trace;
  o.every_nth_step = a.every_nth_step;
  o.fd_eps = parse_positive_list(a.fd_eps);
  o.sam_rho = a.sam_rho;
  o.flatness_threshold = a.flatness_threshold;
  o.flatness_increment = a.flatness_increment;
  o.flatness_max_steps = a.flatness_max_steps;
  o.directions = {parse_direction_norm(a.landscape.norm), a.landscape.ignore_bias_bn, c.seed};
  o.grid.xs = linspace(a.landscape.x.min, a.landscape.x.max, a.landscape.x.num);
  if (a.landscape.y.num > 0)
    o.grid.ys = linspace(a.landscape.y.min, a.landscape.y.max, a.landscape.y.num);
  o.interpolation = linspace(a.interpolation.min, a.interpolation.max, a.interpolation.num);
  o.recompute_batchnorm = a.interpolation_recompute_batchnorm;
  return o;
}

FullLossTerms full_loss_terms(const Config& c, int64_t step) {
  const double lr = learning_rate(trainer_options(c).schedule, step);
  return {c.analysis.landscape.full_loss, c.hyp.optim.weight_decay, lr,
          c.hyp.grad_reg.block_strength};
}

}  // namespace fullbatch
