#include "fullbatch/training/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


torch::Tensor count_correct(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels).sum();
}

}  // namespace

nlohmann::json StepRecord::to_json() const {
  nlohmann::json j = {{"step", step},
                      {"epoch", epoch},
                      {"lr", lr},
                      {"train_loss", train_loss},
                      {"train_accuracy", train_accuracy},
                      {"grad_norm", grad_norm},
                      {"step_time_s", step_time_s},
                      {"time_s", time_s},
                      {"images_per_s", images_per_s}};
  if (clipped_blocks > 0) j["clipped_blocks"] = clipped_blocks;
  // JSON has no NaN/inf: a diverged value is written as null rather than corrupting the file.
  for (auto& item : j.items())
    if (item.value().is_number_float() && !std::isfinite(item.value().get<double>()))
      item.value() = nullptr;
  if (val_loss) j["val_loss"] = std::isfinite(*val_loss) ? nlohmann::json(*val_loss) : nullptr;
  if (val_accuracy) j["val_accuracy"] = *val_accuracy;
  return j;
}

torch::Device resolve_device(const std::string& device) {
  if (device == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::kCPU;
  if (device.rfind("cuda", 0) == 0 && !torch::cuda::is_available())
    throw UserError("config key 'impl.device': '" + device +
                    "' requested but this libtorch sees no CUDA device");
  return torch::Device(device);
}

Trainer::Trainer(Config config, std::shared_ptr<Communicator> comm)
    : config_(std::move(config)), comm_(std::move(comm)), device_(resolve_device(config_.impl.device)) {
  validate(config_);
  set_threads(config_.impl.threads);
  autocast_ = autocast_dtype(config_, device_);
  apply_determinism(config_.impl.deterministic, device_);
  channels_last_ = use_channels_last(config_, device_);
  if (device_.is_cpu() && autocast_ == torch::kBFloat16 && !cpu_has_native_bf16())
    std::fprintf(stderr,
                 "fullbatch: warning: impl.mixed_precision=bf16 on a CPU without bf16 dot products "
                 "(no avx512_bf16 or amx_bf16 in /proc/cpuinfo): expect it slower than fp32\n");

  data_ = load_dataset({config_.data.name, config_.data.path, config_.data.size, config_.data.test_size});
  to_device(data_, device_);
  source_ = std::make_unique<BlockSource>(
      data_,
      BlockSourceOptions{config_.data.augmentations == "crop-flip", config_.data.crop_padding,
                         config_.data.fixed_augmentations, config_.seed, channels_last_});
  const int64_t per_step = config_.data.batch_size * comm_->world_size();
  const int64_t samples = config_.hyp.train_semi_stochastic ? data_.train.size() : source_->num_samples();
  if (samples < per_step)
    throw UserError("config key 'data.batch_size': a block of " + std::to_string(per_step) +
                    " images (x " + std::to_string(comm_->world_size()) +
                    " ranks) is larger than the " + std::to_string(samples) +
                    " training samples; lower data.batch_size or raise data.size");

  model_ = make_model({config_.model.name, config_.model.width, data_.channels(), data_.num_classes,
                       config_.model.zero_init_residual},
                      derive_seed(config_.seed, Stream::kInit, {}));
  model_->to(device_);
  if (channels_last_) {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  params_ = model_->parameters();
  {
    // Every rank starts from rank 0's weights and buffers.
    std::vector<torch::Tensor> all = params_;
    for (auto& b : model_->buffers()) all.push_back(b);
    torch::NoGradGuard no_grad;
    comm_->broadcast(all, 0);
  }
  optimizer_ = std::make_unique<Sgd>(
      params_, SgdOptions{config_.hyp.optim.momentum, config_.hyp.optim.weight_decay,
                          config_.hyp.optim.nesterov});
  schedule_ = {config_.hyp.optim.lr, config_.hyp.warmup, config_.hyp.scheduler, config_.hyp.steps};
  grad_reg_ = {config_.hyp.grad_reg.block_strength, config_.hyp.grad_reg.eps,
               config_.hyp.grad_reg.implementation};
  if (config_.impl.accumulation_dtype == "float64")
    for (const auto& p : params_) accumulator_.push_back(torch::zeros_like(p, torch::kFloat64));
  if (config_.hyp.evaluate_ema) {
    for (const auto& p : params_) ema_.push_back(p.detach().clone());
    for (const auto& b : model_->buffers()) ema_.push_back(b.detach().clone());
  }
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
  return config_.hyp.train_stochastic ||
         (config_.hyp.train_switch_stochastic > 0 && step >= config_.hyp.train_switch_stochastic);
}

OrderSettings Trainer::order_settings(int64_t step) const {
  OrderSettings s;
  s.seed = config_.seed;
  s.shuffle = config_.hyp.shuffle;
  if (stochastic_at(step)) {
    // SGD: each global batch is data.batch_size per rank; every rank takes its slice.
    s.batch_size = config_.data.batch_size * comm_->world_size();
    s.with_replacement = config_.hyp.sample_with_replacement;
    s.num_samples = source_->num_samples();
    if (config_.hyp.train_semi_stochastic) {
      // One round of the fixed augmentations per epoch.
      s.num_samples = data_.train.size();
      s.first_sample = (step % config_.data.fixed_augmentations) * data_.train.size();
    }
  } else {
    s.batch_size = config_.data.batch_size;
    s.num_samples = source_->num_samples();
    s.permute_once = config_.data.fixed_augmentations > 0 && !config_.hyp.shuffle;
  }
  return s;
}

bool Trainer::should_validate(int64_t s) const {
  return s == 1 || s % config_.impl.validate_every_nth_step == 0 || s == config_.hyp.steps;
}

ForwardResult Trainer::forward(const torch::Tensor& inputs, const torch::Tensor& labels) {
  torch::Tensor logits;
  {
    // One scope per pass, not per step: the regularizer changes the weights between passes, so
    // autocast's cached low-precision weight copies must not outlive a pass.
    AutocastScope autocast(device_, autocast_);
    logits = model_->forward(inputs);
  }
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat32), labels,
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(config_.hyp.label_smoothing));
  return {loss, logits};
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

void Trainer::accumulate_block(const Block& block, double lr, double weight,
                               torch::Tensor& loss_sum, torch::Tensor& correct, int64_t& clipped) {
  const int64_t n = block.labels.size(0);
  const int64_t sub = config_.hyp.sub_batch > 0 ? std::min(config_.hyp.sub_batch, n) : n;
  const bool per_block = grad_reg_.strength > 0 || config_.hyp.batch_clip > 0 || sub < n ||
                         !accumulator_.empty();
  if (!per_block) {
    // The fast path: autograd accumulates weight * block gradient straight into .grad.
    ForwardResult out = forward(block.inputs, block.labels);
    (out.loss * weight).backward();
    loss_sum += out.loss.detach();
    correct += count_correct(out.logits.detach(), block.labels);
    return;
  }
  TensorList block_grad;
  for (int64_t begin = 0; begin < n; begin += sub) {
    const int64_t end = std::min(n, begin + sub);
    const double share = static_cast<double>(end - begin) / static_cast<double>(n);
    torch::Tensor x = block.inputs.slice(0, begin, end);
    torch::Tensor y = block.labels.slice(0, begin, end);
    BlockGradient g =
        regularized_block_gradient([&] { return forward(x, y); }, params_, lr, grad_reg_);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < g.grads.size(); ++i) {
      if (block_grad.size() <= i) {
        block_grad.push_back(g.grads[i] * share);
      } else {
        block_grad[i].add_(g.grads[i], share);
      }
    }
    loss_sum += g.loss * share;
    correct += count_correct(g.logits, y);
  }
  torch::NoGradGuard no_grad;
  if (config_.hyp.batch_clip > 0) {
    torch::Tensor norm = clip_to_norm(block_grad, config_.hyp.batch_clip, config_.hyp.grad_clip_norm);
    clipped += norm.item<double>() > config_.hyp.batch_clip ? 1 : 0;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!accumulator_.empty()) {
      accumulator_[i].add_(block_grad[i].to(torch::kFloat64), weight);
    } else {
      params_[i].mutable_grad().add_(block_grad[i], weight);
    }
  }
}

TensorList Trainer::gradient_buffers() {
  return accumulator_.empty() ? gradients_of(params_) : accumulator_;
}

BlockStats Trainer::accumulate_blocks(int64_t step, double lr,
                                      const std::vector<torch::Tensor>& blocks) {
  zero_grads();
  const double weight = 1.0 / static_cast<double>(blocks.size());
  auto stat_options = torch::TensorOptions().device(device_).dtype(torch::kFloat64);
  BlockStats stats{torch::zeros({}, stat_options), torch::zeros({}, stat_options), 0};
  for (size_t b = 0; b < blocks.size(); ++b) {
    // Blocks are dealt round-robin; the block id, not the rank, keys its augmentation.
    if (static_cast<int>(b % comm_->world_size()) != comm_->rank()) continue;
    Block block = source_->block(blocks[b], static_cast<uint64_t>(step), b);
    accumulate_block(block, lr, weight, stats.loss_sum, stats.correct, stats.clipped);
  }
  TensorList grads = gradient_buffers();
  comm_->all_reduce_sum(grads);
  return stats;
}

void Trainer::regularize_full_gradient(int64_t step, double lr,
                                       const std::vector<torch::Tensor>& blocks) {
  // The penalty on the full gradient (acc_strength): a forward difference along v = a * G needs
  // a second pass over every block at theta + eps_n v; the blocks and their augmentations are
  // the same, being keyed by (step, block).
  TensorList g;
  {
    torch::NoGradGuard no_grad;
    for (auto& t : gradient_buffers()) g.push_back(t.detach().clone());
  }
  const double strength = config_.hyp.grad_reg.acc_strength;
  const double v_norm = strength * global_norm(g).item<double>();
  if (v_norm == 0.0) return;
  const double eps_n = config_.hyp.grad_reg.eps / v_norm;
  TensorList saved;
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      saved.push_back(params_[i].detach().clone());
      params_[i].detach().add_(g[i].to(params_[i].scalar_type()), eps_n * strength);
    }
  }
  accumulate_blocks(step, lr, blocks);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].detach().copy_(saved[i]);
  TensorList buffers = gradient_buffers();
  const double factor = lr / 4.0 / eps_n;
  for (size_t i = 0; i < buffers.size(); ++i) {
    torch::Tensor perturbed = buffers[i].clone();
    buffers[i].copy_(g[i] + factor * (perturbed - g[i]));
  }
}

void Trainer::finish_gradient(int64_t noise_key, StepRecord& record) {
  torch::NoGradGuard no_grad;
  TensorList grads = gradient_buffers();
  torch::Tensor norm = global_norm(grads, 2.0);
  if (config_.hyp.grad_clip > 0) clip_to_norm(grads, config_.hyp.grad_clip, config_.hyp.grad_clip_norm);
  if (config_.hyp.grad_noise.additive > 0 || config_.hyp.grad_noise.multiplicative > 0) {
    auto gen = keyed_generator(config_.seed, Stream::kNoise, {static_cast<uint64_t>(noise_key)});
    add_gradient_noise(grads, config_.hyp.grad_noise.additive, config_.hyp.grad_noise.multiplicative,
                       gen);
  }
  if (!accumulator_.empty())
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad().copy_(grads[i]);
  record.grad_norm += norm.item<double>();
}

StepRecord Trainer::full_batch_step(int64_t step, double lr) {
  model_->train();
  const auto blocks = block_order(order_settings(step), step);
  BlockStats stats = accumulate_blocks(step, lr, blocks);
  if (config_.hyp.grad_reg.acc_strength > 0 && lr > 0) regularize_full_gradient(step, lr, blocks);
  StepRecord record;
  finish_gradient(step, record);
  optimizer_->step(lr);
  update_ema();

  auto stat_options = torch::TensorOptions().device(device_).dtype(torch::kFloat64);
  std::vector<torch::Tensor> totals{stats.loss_sum, stats.correct,
                                    torch::full({}, static_cast<double>(stats.clipped), stat_options)};
  comm_->all_reduce_sum(totals);
  const double images = static_cast<double>(blocks.size() * config_.data.batch_size);
  record.train_loss = totals[0].item<double>() / static_cast<double>(blocks.size());
  record.train_accuracy = 100.0 * totals[1].item<double>() / images;
  record.clipped_blocks = static_cast<int64_t>(totals[2].item<double>());
  return record;
}

StepRecord Trainer::sgd_epoch(int64_t epoch, double lr) {
  model_->train();
  const auto batches = block_order(order_settings(epoch), epoch);
  const int64_t per_rank = config_.data.batch_size;
  auto stat_options = torch::TensorOptions().device(device_).dtype(torch::kFloat64);
  torch::Tensor loss_sum = torch::zeros({}, stat_options);
  torch::Tensor correct = torch::zeros({}, stat_options);
  int64_t clipped = 0;
  StepRecord record;
  for (size_t k = 0; k < batches.size(); ++k) {
    zero_grads();
    torch::Tensor mine = batches[k].slice(0, comm_->rank() * per_rank, (comm_->rank() + 1) * per_rank);
    Block block = source_->block(mine, static_cast<uint64_t>(epoch), k, comm_->rank() * per_rank,
                                 per_rank * comm_->world_size());
    accumulate_block(block, lr, 1.0 / comm_->world_size(), loss_sum, correct, clipped);
    TensorList grads = gradient_buffers();
    comm_->all_reduce_sum(grads);
    // Noise for SGD steps is keyed by (epoch, batch) folded into one key.
    finish_gradient(epoch * 1000003 + static_cast<int64_t>(k), record);
    optimizer_->step(lr);
    update_ema();
  }
  std::vector<torch::Tensor> stats{loss_sum, correct,
                                   torch::full({}, static_cast<double>(clipped), stat_options)};
  comm_->all_reduce_sum(stats);
  const double steps = static_cast<double>(batches.size());
  const double images = steps * static_cast<double>(per_rank * comm_->world_size());
  record.train_loss = stats[0].item<double>() / (steps * comm_->world_size());
  record.train_accuracy = 100.0 * stats[1].item<double>() / images;
  record.grad_norm /= steps;
  record.clipped_blocks = static_cast<int64_t>(stats[2].item<double>());
  return record;
}

void Trainer::update_ema() {
  if (ema_.empty()) return;
  torch::NoGradGuard no_grad;
  const double m = config_.hyp.eval_ema_momentum;
  size_t i = 0;
  for (const auto& p : params_) ema_[i++].mul_(m).add_(p.detach(), 1.0 - m);
  for (const auto& b : model_->buffers()) {
    if (b.is_floating_point()) {
      ema_[i].mul_(m).add_(b, 1.0 - m);
    } else {
      ema_[i].copy_(b);
    }
    ++i;
  }
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
  std::vector<torch::Tensor> live;
  if (!ema_.empty()) {
    // Swap the EMA weights in for the evaluation only.
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> targets = params_;
    for (auto& b : model_->buffers()) targets.push_back(b);
    for (size_t i = 0; i < targets.size(); ++i) {
      live.push_back(targets[i].detach().clone());
      targets[i].detach().copy_(ema_[i]);
    }
  }
  model_->eval();
  torch::NoGradGuard no_grad;
  const int64_t n = data_.test.size();
  const int64_t chunk = config_.impl.eval_batch_size;
  auto stat_options = torch::TensorOptions().device(device_).dtype(torch::kFloat64);
  torch::Tensor loss_sum = torch::zeros({}, stat_options);
  torch::Tensor correct = torch::zeros({}, stat_options);
  int64_t index = 0;
  for (int64_t begin = 0; begin < n; begin += chunk, ++index) {
    if (static_cast<int>(index % comm_->world_size()) != comm_->rank()) continue;
    Block block = test_block(data_, begin, std::min(n, begin + chunk), channels_last_);
    torch::Tensor logits;
    {
      AutocastScope autocast(device_, autocast_);
      logits = model_->forward(block.inputs).to(torch::kFloat32);
      if (config_.impl.test_time_flips)
        logits = 0.5 * (logits + model_->forward(block.inputs.flip({3})).to(torch::kFloat32));
    }
    loss_sum += torch::nn::functional::cross_entropy(
        logits, block.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    correct += count_correct(logits, block.labels);
  }
  std::vector<torch::Tensor> stats{loss_sum, correct};
  comm_->all_reduce_sum(stats);
  model_->train();
  if (!live.empty()) {
    std::vector<torch::Tensor> targets = params_;
    for (auto& b : model_->buffers()) targets.push_back(b);
    for (size_t i = 0; i < targets.size(); ++i) targets[i].detach().copy_(live[i]);
  }
  return {stats[0].item<double>() / n, 100.0 * stats[1].item<double>() / n, n};
}

StepRecord Trainer::train_step() {
  const int64_t step = step_;
  const double lr = learning_rate(schedule_, step);
  const int64_t images = train_images_per_step();
  const auto t0 = Clock::now();
  StepRecord r = stochastic_at(step) ? sgd_epoch(step, lr) : full_batch_step(step, lr);
  synchronize(device_);
  r.step_time_s = seconds_since(t0);
  elapsed_s_ += r.step_time_s;
  ++step_;
  r.step = step_;
  r.lr = lr;
  r.time_s = elapsed_s_;
  r.images_per_s = static_cast<double>(images) / std::max(r.step_time_s, 1e-9);
  r.epoch = static_cast<double>(step_) * passes_per_step();
  if (validation_ && std::isfinite(r.train_loss) && should_validate(step_)) {
    Evaluation e = evaluate();
    r.val_loss = e.loss;
    r.val_accuracy = e.accuracy;
  }
  steps_at_full_accuracy_ = r.train_accuracy >= 100.0 ? steps_at_full_accuracy_ + 1 : 0;
  return r;
}

void Trainer::train(const std::function<void(const StepRecord&)>& on_step) {
  while (step_ < config_.hyp.steps) {
    StepRecord r = train_step();
    if (!std::isfinite(r.train_loss) || !std::isfinite(r.grad_norm))
      throw DivergenceError("training diverged: non-finite " +
                      std::string(std::isfinite(r.train_loss) ? "gradient norm" : "train loss") +
                      " at step " + std::to_string(r.step) + " (lr " + std::to_string(r.lr) +
                      "); results up to step " + std::to_string(r.step - 1) + " are kept");
    const int64_t k = config_.hyp.stop_at_full_training_accuracy;
    const bool stop = k > 0 && steps_at_full_accuracy_ >= k;
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
  for (size_t i = 0; i < ema_.size(); ++i) state["ema." + std::to_string(i)] = ema_[i];
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  state["trainer.step"] = torch::full({}, step_, i64);
  state["trainer.steps_at_full_accuracy"] = torch::full({}, steps_at_full_accuracy_, i64);
  state["trainer.elapsed_s"] = torch::full({}, elapsed_s_, torch::kFloat64);
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
  for (size_t i = 0; i < ema_.size(); ++i) ema_[i].copy_(take("ema." + std::to_string(i)));
  step_ = take("trainer.step").item<int64_t>();
  steps_at_full_accuracy_ = take("trainer.steps_at_full_accuracy").item<int64_t>();
  elapsed_s_ = take("trainer.elapsed_s").item<double>();
}

}  // namespace fullbatch
