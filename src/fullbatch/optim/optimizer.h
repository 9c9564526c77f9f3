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

// hyp.optim.* and hyp.optim_modification.*, with the reference's key names. An optimizer ignores
// the keys it does not use. Defaults are gd.yaml's; reference_optimizer_settings gives each
// optimizer's own yaml.
struct OptimizerSettings {
  std::string name = "Gradient Descent";  // optimizer_names(), or one of its aliases
  double lr = 0.1;  // the schedule's base value: optimizers take each step's lr from step()

  // Gradient Descent, GD-AGC, Adaptive Gradient Descent (torch.optim.SGD's semantics)
  double momentum = 0.9;
  double weight_decay = 5e-4;  // every optimizer but FISTA (which has none in the reference)
  bool nesterov = true;
  double dampening = 0.0;

  // Adam: torch.optim.AdamW
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 0.0;  // Adam, L-BFGS, GD-AGC; 0 = the reference's default (1e-8, 1e-2, 1e-3)
  bool amsgrad = false;

  // L-BFGS (the reference's lbfgs.py)
  int64_t history_size = 10;
  std::string line_search = "Wolfe";  // Wolfe or none (Gradient Descent ignores it)
  bool damping = true;                // Powell damping of the curvature pairs
  double eta = 2.0;                   // the line search's growth factor
  double c1 = 1e-4;                   // sufficient decrease
  double c2 = 0.9;                    // curvature
  int64_t max_linesearches = 10;

  // FISTA: the momentum sequence t' = (p + sqrt(q + r t^2)) / 2
  std::array<double, 3> fista_mod = {1.0, 1.0, 4.0};

  // GD-AGC: unit-wise clipping of each gradient row to clipping * max(|row of p|, eps)
  double clipping = 0.01;
  // Parameters whose names start with one of these are not clipped. The reference's rule is
  // "linear": its NFNet's classifier; its ResNets' classifier "fc" is clipped.
  std::vector<std::string> agc_unclipped_prefixes = {"linear"};

  // Adaptive Gradient Descent (the reference's adaptive_clipping.py)
  int64_t interval = 10;   // norms looked back over
  double norm_type = 2.0;  // 2, any p > 0, or inf

  // hyp.only_linear_layers_weight_decay: no weight decay on biases and gains (names matching
  // the reference's regular expressions; see parameter_weight_decays).
  bool only_linear_layers_weight_decay = false;

  struct Modification {
    std::string name = "none";        // none, SAM, LARS or LARC
    double rho = 0.05;                // SAM
    double trust_coefficient = 0.02;  // LARS, LARC
    double eps = 1e-8;                // LARS, LARC
  } modification;
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
