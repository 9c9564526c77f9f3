#include "fullbatch/training/trainer.h"

#include <torch/torch.h>

#include <cmath>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"
#include "fullbatch/models/torchscript.h"
#include "fullbatch/training/loss.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch {
namespace {

void check_block_fits(const TrainerOptions& o, int64_t samples, int world_size) {
  const int64_t per_step = o.order.batch_size * world_size;
  if (samples < per_step)
    throw UserError("config key 'data.batch_size': a block of " + std::to_string(per_step) +
                    " images (x " + std::to_string(world_size) + " ranks) is larger than the " +
                    std::to_string(samples) +
                    " training samples; lower data.batch_size or raise data.size");
}

}  // namespace

ModelPtr build_model(const TrainerOptions& options, const Dataset& data, const Execution& execution) {
  ModelSpec spec = options.model;
  spec.in_channels = data.channels();
  spec.num_classes = data.num_classes;
  ModelPtr model = make_model(spec, derive_seed(options.seed, Stream::kInit, {}));
  model->to(execution.device);
  // The zoo's models fit any data by construction; the user's module is tried on one input.
  if (spec.name == kTorchScriptModelName) {
    const int64_t height = data.pixels > 0 ? data.pixels : data.height();
    const int64_t width = data.pixels > 0 ? data.pixels : data.width();
    check_model_fits_data(*model, spec.path, data.channels(), height, width, data.num_classes);
  }
  if (execution.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  return model;
}

Trainer::Trainer(TrainerOptions options, std::shared_ptr<Communicator> comm)
    : options_(std::move(options)),
      comm_(std::move(comm)),
      execution_(resolve_execution(options_.execution, options_.model)) {
  data_ = load_dataset(options_.data);
  to_device(data_, execution_.device);
  BlockSourceOptions blocks = options_.blocks;
  blocks.channels_last = execution_.channels_last;
  source_ = std::make_unique<BlockSource>(data_, blocks);
  check_block_fits(options_, options_.order.semi_stochastic ? data_.train.size() : source_->num_samples(),
                   comm_->world_size());

  model_ = build_model(options_, data_, execution_);
  params_ = model_->parameters();
  {
    // Every rank starts from rank 0's weights and buffers.
    std::vector<torch::Tensor> all = params_;
    for (auto& b : model_->buffers()) all.push_back(b);
    torch::NoGradGuard no_grad;
    comm_->broadcast(all, 0);
  }
  std::vector<std::string> names;
  for (const auto& item : model_->named_parameters()) names.push_back(item.key());
  optimizer_ = make_optimizer(params_, names, options_.optimizer);
  if (execution_.float64_accumulation)
    for (const auto& p : params_) accumulator_.push_back(torch::zeros_like(p, torch::kFloat64));
  if (options_.eval.ema) ema_ = std::make_unique<WeightAverage>(*model_, options_.eval.ema_momentum);
  blocks_per_pass_ = groupable_blocks_per_pass();
}

int64_t Trainer::train_images_per_step() const {
  // The order's blocks already span all ranks (full batch: dealt out; SGD: global batches).
  const OrderSettings s = order_settings(step_);
  return num_blocks(s) * s.batch_size;
}

double Trainer::passes_per_step() const {
  return static_cast<double>(train_images_per_step()) / static_cast<double>(data_.train.size());
}

bool Trainer::stochastic_at(int64_t step) const {
  const OrderOptions& o = options_.order;
  return o.stochastic || (o.switch_to_stochastic_at > 0 && step >= o.switch_to_stochastic_at);
}

OrderSettings Trainer::order_settings(int64_t step) const {
  const OrderOptions& o = options_.order;
  const int64_t rounds = options_.blocks.fixed_rounds;
  OrderSettings s;
  s.seed = options_.seed;
  s.shuffle = o.shuffle;
  s.num_samples = source_->num_samples();
  if (stochastic_at(step)) {
    // SGD: each global batch is data.batch_size per rank; every rank takes its slice.
    s.batch_size = o.batch_size * comm_->world_size();
    s.with_replacement = o.with_replacement;
    if (o.semi_stochastic) {
      // One round of the fixed augmentations per epoch.
      s.num_samples = data_.train.size();
      s.first_sample = (step % rounds) * data_.train.size();
    }
  } else {
    s.batch_size = o.batch_size;
    s.permute_once = rounds > 0 && !o.shuffle;
    s.round_size = data_.train.size();
  }
  return s;
}

bool Trainer::should_validate(int64_t s) const {
  // As the reference: after steps 1, 1 + N, 1 + 2N, ... and the last.
  return (s - 1) % options_.eval.every_nth_step == 0 || s >= options_.steps;
}

ForwardResult Trainer::forward(const torch::Tensor& inputs, const torch::Tensor& labels) {
  torch::Tensor logits;
  {
    // One scope per pass, not per step: the regularizer changes the weights between passes, so
    // autocast's cached low-precision weight copies must not outlive a pass.
    AutocastScope autocast(execution_.device, execution_.autocast);
    logits = model_->forward(inputs);
  }
  return {training_loss(logits.to(torch::kFloat32), labels, options_.gradient.label_smoothing),
          logits};
}

Trainer::BlockStats Trainer::zero_stats() const {
  auto stat_options = torch::TensorOptions().device(execution_.device).dtype(torch::kFloat64);
  return {torch::zeros({}, stat_options), torch::zeros({}, stat_options), 0};
}

Trainer::StatTotals Trainer::reduce_stats(const BlockStats& stats) {
  auto stat_options = torch::TensorOptions().device(execution_.device).dtype(torch::kFloat64);
  std::vector<torch::Tensor> totals{stats.loss_sum, stats.correct,
                                    torch::full({}, static_cast<double>(stats.clipped), stat_options)};
  comm_->all_reduce_sum(totals);
  return {totals[0].item<double>(), totals[1].item<double>(),
          static_cast<int64_t>(totals[2].item<double>())};
}

void Trainer::zero_grads() {
  for (auto& p : params_) {
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    } else {
      p.mutable_grad() = torch::zeros_like(p);
    }
  }
  for (auto& a : accumulator_) a.zero_();
}

TensorList Trainer::gradient_buffers() {
  return accumulator_.empty() ? gradients_of(params_) : accumulator_;
}

void Trainer::average_batchnorm_buffers() {
  if (comm_->world_size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> buffers;
  for (auto& b : model_->buffers())
    if (b.is_floating_point()) buffers.push_back(b);
  comm_->all_reduce_sum(buffers);
  for (auto& b : buffers) b.div_(comm_->world_size());
}

Evaluation Trainer::evaluate() {
  average_batchnorm_buffers();
  std::unique_ptr<WeightAverage::Swap> averaged;
  if (ema_) averaged = std::make_unique<WeightAverage::Swap>(*ema_);
  return evaluate_model(*model_, data_, options_.eval, execution_, *comm_);
}

StepRecord Trainer::train_step() {
  const int64_t step = step_;
  const double lr = learning_rate(options_.schedule, step);
  const int64_t images = train_images_per_step();
  const auto t0 = Clock::now();
  StepRecord r = stochastic_at(step) ? sgd_epoch(step, lr) : full_batch_step(step, lr);
  synchronize(execution_.device);
  r.step_time_s = seconds_since(t0);
  elapsed_s_ += r.step_time_s;
  ++step_;
  r.step = step_;
  r.lr = lr;
  r.time_s = elapsed_s_;
  r.images_per_s = static_cast<double>(images) / std::max(r.step_time_s, 1e-9);
  // Passes over the data: each step's own, plus every extra gradient evaluation an optimizer made.
  r.epoch = static_cast<double>(step_) * passes_per_step() + extra_passes_;
  if (validation_ && std::isfinite(r.train_loss) && should_validate(step_)) {
    Evaluation e = evaluate();
    r.val_loss = e.loss;
    r.val_accuracy = e.accuracy;
  }
  steps_at_full_accuracy_ = r.train_accuracy >= 100.0 ? steps_at_full_accuracy_ + 1 : 0;
  return r;
}

void Trainer::train(const std::function<void(const StepRecord&)>& on_step) {
  while (step_ < options_.steps) {
    StepRecord r = train_step();
    if (!std::isfinite(r.train_loss) || !std::isfinite(r.grad_norm))
      throw DivergenceError("training diverged: non-finite " +
                            std::string(std::isfinite(r.train_loss) ? "gradient norm" : "train loss") +
                            " at step " + std::to_string(r.step) + " (lr " + std::to_string(r.lr) +
                            "); results up to step " + std::to_string(r.step - 1) + " are kept");
    const int64_t k = options_.stop_at_full_training_accuracy;
    const double target = options_.stop_at_val_accuracy;
    const bool reached = target > 0 && r.val_accuracy && *r.val_accuracy >= target;
    if (reached) r.reached_val_accuracy = target;
    const bool stop = (k > 0 && steps_at_full_accuracy_ >= k) || reached;
    if (stop && !r.val_accuracy) {
      // The last record of a run always carries the final evaluation.
      Evaluation e = evaluate();
      r.val_loss = e.loss;
      r.val_accuracy = e.accuracy;
    }
    if (on_step) on_step(r);
    if (stop) break;
  }
}

std::map<std::string, torch::Tensor> Trainer::state_dict() const {
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : model_->named_parameters()) state["model." + item.key()] = item.value().detach();
  for (const auto& item : model_->named_buffers()) state["model." + item.key()] = item.value().detach();
  for (const auto& [k, v] : optimizer_->state_dict()) state["optim." + k] = v;
  if (ema_) state.merge(ema_->state_dict());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  state["trainer.step"] = torch::full({}, step_, i64);
  state["trainer.steps_at_full_accuracy"] = torch::full({}, steps_at_full_accuracy_, i64);
  state["trainer.elapsed_s"] = torch::full({}, elapsed_s_, torch::kFloat64);
  state["trainer.extra_passes"] = torch::full({}, extra_passes_, torch::kFloat64);
  return state;
}

void Trainer::load_state_dict(const std::map<std::string, torch::Tensor>& state) {
  auto take = [&](const std::string& key) {
    auto it = state.find(key);
    if (it == state.end()) throw UserError("checkpoint: missing entry '" + key + "'");
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (auto& item : model_->named_parameters()) item.value().copy_(take("model." + item.key()));
  for (auto& item : model_->named_buffers()) item.value().copy_(take("model." + item.key()));
  std::map<std::string, torch::Tensor> optim;
  for (const auto& [k, v] : state)
    if (k.rfind("optim.", 0) == 0) optim[k.substr(6)] = v;
  optimizer_->load_state_dict(optim);
  if (ema_) ema_->load_state_dict(state);
  step_ = take("trainer.step").item<int64_t>();
  steps_at_full_accuracy_ = take("trainer.steps_at_full_accuracy").item<int64_t>();
  elapsed_s_ = take("trainer.elapsed_s").item<double>();
  // Checkpoints written before optimizers could evaluate more than once a step lack it.
  auto extra = state.find("trainer.extra_passes");
  extra_passes_ = extra == state.end() ? 0.0 : extra->second.item<double>();
}

}  // namespace fullbatch
