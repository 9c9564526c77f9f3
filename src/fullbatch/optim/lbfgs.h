#pragma once
// hyp.optim.name "L-BFGS": the reference's own L-BFGS (fullbatch/training/additional_optimizers/
// lbfgs.py, after Shi and Mudigere's PyTorch-LBFGS): curvature pairs with optional Powell
// damping, the two-loop recursion, and a weak Wolfe line search by bracketing and quadratic
// interpolation that evaluates the full gradient through the closure.
#include <torch/types.h>

#include <deque>
#include <string>
#include <vector>

#include "fullbatch/optim/optimizer.h"

namespace fullbatch {

// hyp.optim.line_search, resolved from its spelling once (make_optimizer).
enum class LineSearch { kWolfe, kNone };

struct LbfgsOptions {
  int64_t history_size = 10;
  LineSearch line_search = LineSearch::kWolfe;
  double eps = 1e-2;                  // curvature pair rejection / damping threshold
  bool damping = true;
  double eta = 2.0;  // growth of the step while no upper bracket is known
  double c1 = 1e-4;
  double c2 = 0.9;
  int64_t max_linesearches = 10;
};

// One step, with g the flat gradient plus weight decay (g_i + wd_i p_i over all parameters):
//   1. after the first step, unless the last line search failed: y = g - g_prev, s = t d,
//      sBs = s.Bs with Bs = -t g_prev; if y.s > eps sBs, or always with damping (then, when
//      y.s < eps sBs, y = theta y + (1 - theta) Bs with theta = (1 - eps) sBs / (sBs - y.s)),
//      (s, y) joins the history (oldest dropped beyond history_size) and H0 = y.s / y.y, with
//      y.s from before the damping, as the reference;
//   2. d = -H g by the two-loop recursion;
//   3. Wolfe: F_k = closure(); try t = 1, moving p by lr * t * d, until
//      F(t) <= F_k + c1 t g.d and g(t).d >= c2 g.d; no upper bracket yet: t *= eta; else the
//      minimizer of the quadratic through (alpha, F_a, g_a) and (beta, F_b), safeguarded to
//      [alpha + 0.2 (beta - alpha), (beta - alpha) / 2] as the reference writes it; after
//      max_linesearches tries the step is undone (t = 0) and marked failed.
//      none: p += lr d.
// The curvature pair uses s = t d, without lr, as the reference does: lr scales the step taken.
// State: "lbfgs.*" (counters, H0, the last t, d, g_prev and Bs, and the pairs
// "lbfgs.old_dirs.<k>" = s, "lbfgs.old_stps.<k>" = y, the reference's names).
class Lbfgs : public Optimizer {
 public:
  // weight_decays: one per parameter (empty: none).
  Lbfgs(std::vector<torch::Tensor> params, LbfgsOptions options,
        std::vector<double> weight_decays = {});

  void step(double lr, const GradientClosure& closure) override;
  bool needs_closure() const override { return wolfe_; }
  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;

 private:
  torch::Tensor flat_gradient() const;
  void add_update(double step, const torch::Tensor& d);
  void update_curvature(const torch::Tensor& flat_grad);
  torch::Tensor two_loop_recursion(torch::Tensor q) const;
  // Returns the accepted step length (0 when failed).
  double wolfe_search(double lr, const torch::Tensor& d, double gtd,
                      const GradientClosure& closure);
  torch::Tensor flat_like() const;

  std::vector<torch::Tensor> params_;
  std::vector<double> weight_decays_;
  LbfgsOptions options_;
  bool wolfe_;
  int64_t numel_ = 0;

  int64_t n_iter_ = 0, curv_skips_ = 0, fail_skips_ = 0;
  double h_diag_ = 1.0;  // the initial inverse Hessian's scale
  bool fail_ = true;     // the last line search failed (or there was none yet)
  double t_ = 0.0;       // the last step length
  std::deque<torch::Tensor> old_dirs_, old_stps_;  // s and y
  torch::Tensor d_, prev_flat_grad_, bs_;
};

// The minimizer of the quadratic through (a, fa) with slope ga at a and through (b, fb), within
// [min(a, b), max(a, b)] (the reference's polyinterp for two points, one slope). Exposed for tests.
double quadratic_interpolation(double a, double fa, double ga, double b, double fb);

}  // namespace fullbatch
