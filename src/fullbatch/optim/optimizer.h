#pragma once
// The optimizers of the reference implementation (hyp.optim.name) and the modifications wrapped
// around them (hyp.optim_modification.name), behind one interface, so the trainer steps,
// checkpoints and resumes every combination the same way. Each optimizer lives in its own file
// beside this one (sgd, adamw, lbfgs, fista, agc, adaptive_gd; sam and lars wrap any other);
// make_optimizer builds one from the settings. docs/optimizers.md lists the keys, the
// reference's defaults and where the reference's code and ours part ways.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/config/optimizer_settings.h"

namespace fullbatch {

// Recomputes the loss and the full gradient at the current parameters into each parameter's
// .grad(), with everything the trainer does to a gradient (regularizer, clipping, noise), as the
// reference's closure does; returns the mean data loss (without weight decay). Optimizers call
// it with gradients enabled (call_closure), whatever mode they are in.
using GradientClosure = std::function<double()>;

using OptimizerState = std::map<std::string, torch::Tensor>;

// Parameters' .grad() hold the (already reduced, clipped, noised) full gradient when step() is
// called: the trainer's own evaluation stands for the reference's first closure() call inside
// optimizer.step(closure).
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // lr: the schedule's value this step (the reference schedules the base optimizer's lr; for
  // L-BFGS it multiplies the line search's step length). `closure` is called only by the
  // optimizers that need more gradients (needs_closure()).
  virtual void step(double lr, const GradientClosure& closure) = 0;

  // Everything resume needs: tensors only, counters as 0-dim int64/double tensors. The tensors
  // may share storage with the live state: serialize or clone them before the next step.
  virtual OptimizerState state_dict() const = 0;
  // UserError naming the entry when an entry is missing or has the wrong shape.
  virtual void load_state_dict(const OptimizerState& state) = 0;

  virtual bool needs_closure() const { return false; }
};

// The reference's names (hyp.optim.name, hyp.optim_modification.name), in their spelling.
std::vector<std::string> optimizer_names();
std::vector<std::string> modification_names();
// A name in the reference's spelling, from it in any case or one of its aliases (gd, sgd, adamw,
// lbfgs, agc, gd_agc, adaptive-gd, agd, ...; "" for none): the lists of common/names.h, which the
// config keys read too. UserError listing the names otherwise.
std::string canonical_optimizer_name(const std::string& name);
std::string canonical_modification_name(const std::string& name);

// The settings of the reference's config/hyp/optim/<name>.yaml (gd, adam, lbfgs, fista, gd_agc,
// gd_clip), which selecting the optimizer loads there; the modification's keys are left at their
// (SAM.yaml, LARS.yaml, LARC.yaml) defaults.
OptimizerSettings reference_optimizer_settings(const std::string& name);

// Each parameter's weight decay: settings.weight_decay, 0 for FISTA, and with
// only_linear_layers_weight_decay 0 for names matching "(bias|gain)|skip_gain" (for GD-AGC:
// "stem.*(bias|gain)|conv.*(bias|gain)|skip_gain"), as the reference's optimizers.py.
std::vector<double> parameter_weight_decays(const std::vector<std::string>& names,
                                            const OptimizerSettings& settings);

// The optimizer named by settings.name, wrapped in settings.modification. `names` are the
// parameters' names in the model (empty: no names), for GD-AGC's unclipped layer and the weight
// decay rule. UserError on an unknown name, a bad value or a combination the reference cannot run.
std::unique_ptr<Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                          std::vector<std::string> names,
                                          const OptimizerSettings& settings);

// ---- For the implementations ----

// A modification around a base optimizer (SAM, LARS): it changes the gradient or the point
// before the base steps and has no state of its own, so a checkpoint holds the base's.
class OptimizerModification : public Optimizer {
 public:
  OptimizerState state_dict() const override { return base_->state_dict(); }
  void load_state_dict(const OptimizerState& state) override { base_->load_state_dict(state); }
  bool needs_closure() const override { return base_->needs_closure(); }

 protected:
  OptimizerModification(std::unique_ptr<Optimizer> base, std::vector<torch::Tensor> params)
      : base_(std::move(base)), params_(std::move(params)) {}

  std::unique_ptr<Optimizer> base_;
  std::vector<torch::Tensor> params_;
};

// One value per parameter: `values`, or `count` times `fallback` when empty;
// std::invalid_argument when another number is given.
std::vector<double> per_parameter(std::vector<double> values, size_t count, double fallback);

// Calls the closure with gradients enabled (optimizers update weights under NoGradGuard).
double call_closure(const GradientClosure& closure);

// "<name>.<i>", the key of parameter i's entry.
std::string state_key(const std::string& name, size_t i);

// Entry `key` of a checkpoint's optimizer state, copied to `like`'s dtype and device. Absent:
// undefined, or UserError when `required`. Another shape than `like`'s: UserError.
torch::Tensor load_state_tensor(const OptimizerState& state, const std::string& key,
                                const torch::Tensor& like, bool required);
// A counter (0-dim tensor); UserError naming the key when absent.
int64_t load_state_int(const OptimizerState& state, const std::string& key);
double load_state_double(const OptimizerState& state, const std::string& key);
// 0-dim CPU tensors for counters.
torch::Tensor int_state(int64_t value);
torch::Tensor double_state(double value);

}  // namespace fullbatch
