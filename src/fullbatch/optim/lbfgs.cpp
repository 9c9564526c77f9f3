#include "fullbatch/optim/lbfgs.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fullbatch/common/error.h"

namespace fullbatch {

double quadratic_interpolation(double a, double fa, double ga, double b, double fb) {
  double x;
  if (a == 0) {
    x = -ga * b * b / (2 * (fb - fa - ga * b));
  } else {
    const double curvature = -(fa - fb - ga * (a - b)) / ((a - b) * (a - b));
    x = a - ga / (2 * curvature);
  }
  if (std::isnan(x)) return x;  // numpy's minimum/maximum keep a NaN
  return std::min(std::max(std::min(a, b), x), std::max(a, b));
}

Lbfgs::Lbfgs(std::vector<torch::Tensor> params, LbfgsOptions options,
             std::vector<double> weight_decays)
    : params_(std::move(params)),
      weight_decays_(per_parameter(std::move(weight_decays), params_.size(), 0.0)),
      options_(std::move(options)),
      wolfe_(options_.line_search == LineSearch::kWolfe) {
  const LbfgsOptions& o = options_;
  expects(o.history_size >= 1, "Lbfgs: history_size must be >= 1");
  expects(o.eps > 0, "Lbfgs: eps must be > 0");  // the key's 0 is replaced by 1e-2 before
  expects(o.eta > 1, "Lbfgs: eta must be > 1");
  expects(o.max_linesearches >= 1, "Lbfgs: max_linesearches must be >= 1");
  // Each constant is in (0, 1) at its key; their order is a property of the pair.
  if (!(o.c1 > 0 && o.c1 < o.c2 && o.c2 < 1))
    throw UserError("hyp.optim.c1, c2: need 0 < c1 < c2 < 1 (L-BFGS)");
  for (const auto& p : params_) numel_ += p.numel();
}

torch::Tensor Lbfgs::flat_like() const {
  return torch::empty({numel_}, params_.empty() ? torch::TensorOptions() : params_[0].options());
}

// The reference adds the weight decay into each gradient (its _gather_flat_grad); this one leaves
// .grad() as it is and gathers every parameter (the reference's keeps one per group).
torch::Tensor Lbfgs::flat_gradient() const {
  std::vector<torch::Tensor> views;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& p = params_[i];
    torch::Tensor g =
        p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options());
    if (weight_decays_[i] != 0) g = g.add(p.detach().reshape(-1).mul(weight_decays_[i]));
    views.push_back(g);
  }
  return torch::cat(views);
}

void Lbfgs::add_update(double step, const torch::Tensor& d) {
  int64_t offset = 0;
  for (auto& p : params_) {
    const int64_t n = p.numel();
    p.add_(d.narrow(0, offset, n).view_as(p), step);
    offset += n;
  }
}

void Lbfgs::update_curvature(const torch::Tensor& flat_grad) {
  if (fail_) {
    ++fail_skips_;
    return;
  }
  torch::Tensor y = flat_grad.sub(prev_flat_grad_);
  torch::Tensor s = d_.mul(t_);
  const double sBs = s.dot(bs_).item<double>();
  const double ys = y.dot(s).item<double>();
  const double eps = options_.eps;
  if (!(ys > eps * sBs || options_.damping)) {
    ++curv_skips_;
    return;
  }
  if (options_.damping && ys < eps * sBs) {  // Powell damping
    const double theta = ((1 - eps) * sBs) / (sBs - ys);
    y = y.mul(theta).add(bs_.mul(1 - theta));
  }
  if (static_cast<int64_t>(old_dirs_.size()) == options_.history_size) {
    old_dirs_.pop_front();
    old_stps_.pop_front();
  }
  old_dirs_.push_back(s);
  old_stps_.push_back(y);
  h_diag_ = ys / y.dot(y).item<double>();
}

torch::Tensor Lbfgs::two_loop_recursion(torch::Tensor q) const {
  const size_t m = old_dirs_.size();
  std::vector<double> rho(m), alpha(m);
  for (size_t i = 0; i < m; ++i) rho[i] = 1.0 / old_stps_[i].dot(old_dirs_[i]).item<double>();
  for (size_t k = m; k-- > 0;) {
    alpha[k] = old_dirs_[k].dot(q).item<double>() * rho[k];
    q.add_(old_stps_[k], -alpha[k]);
  }
  torch::Tensor r = q.mul(h_diag_);
  for (size_t i = 0; i < m; ++i) {
    const double beta = old_stps_[i].dot(r).item<double>() * rho[i];
    r.add_(old_dirs_[i], alpha[i] - beta);
  }
  return r;
}

double Lbfgs::wolfe_search(double lr, const torch::Tensor& d, double gtd,
                           const GradientClosure& closure) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const LbfgsOptions& o = options_;
  double t = 1.0, t_prev = 0.0, alpha = 0.0, beta = inf;
  const double f_k = call_closure(closure);
  double f_a = f_k, g_a = gtd, f_b = nan;
  add_update(t * lr, d);
  double f_new = call_closure(closure);
  for (int64_t ls_step = 0;; ++ls_step) {
    if (ls_step >= o.max_linesearches) {
      // Back to the start. The reference evaluates the closure there once more; its gradient
      // would only be the next step's, which the trainer computes anyway.
      add_update(-t * lr, d);
      fail_ = true;
      return 0.0;
    }
    if (f_new > f_k + o.c1 * t * gtd) {  // not a sufficient decrease: an upper bracket
      beta = t;
      t_prev = t;
      f_b = f_new;
    } else {
      const double gtd_new = flat_gradient().dot(d).item<double>();
      if (!(gtd_new < o.c2 * gtd)) break;  // both Wolfe conditions hold
      alpha = t;                           // still descending steeply: a lower bracket
      t_prev = t;
      f_a = f_new;
      g_a = gtd_new;
    }
    if (!std::isfinite(f_b)) {
      t = std::isinf(beta) ? o.eta * t : (alpha + beta) / 2.0;
    } else if (!std::isfinite(f_a) || !std::isfinite(g_a)) {
      // Only after a non-finite loss at the start; the reference's polyinterp would fit another
      // polynomial, which cannot rescue a diverged run. Bisect.
      t = (alpha + beta) / 2.0;
    } else {
      // f_b is finite only once beta is, so the reference's safeguard for an unbounded bracket
      // is never reached; its upper safeguard is (beta - alpha) / 2, as written there.
      t = quadratic_interpolation(alpha, f_a, g_a, beta, f_b);
      if (t < alpha + 0.2 * (beta - alpha)) {
        t = alpha + 0.2 * (beta - alpha);
      } else if (t > (beta - alpha) / 2.0) {
        t = (beta - alpha) / 2.0;
      }
      if (t <= 0) t = (beta - alpha) / 2.0;
    }
    add_update((t - t_prev) * lr, d);
    f_new = call_closure(closure);
  }
  fail_ = false;
  return t;
}

void Lbfgs::step(double lr, const GradientClosure& closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor grad = flat_gradient();
  if (n_iter_ > 0) update_curvature(grad);
  const torch::Tensor d = two_loop_recursion(grad.neg());
  ++n_iter_;
  const double gtd = grad.dot(d).item<double>();
  prev_flat_grad_ = grad;
  double t = 1.0;
  if (!wolfe_) {
    add_update(t * lr, d);
    fail_ = false;
  } else if (lr == 0) {
    // (The first warm-up step.) Nothing can move: the reference's search evaluates the same
    // point max_linesearches times and fails; fail at once.
    t = 0.0;
    fail_ = true;
  } else {
    t = wolfe_search(lr, d, gtd, closure);
  }
  bs_ = grad.mul(-t);
  d_ = d;
  t_ = t;
}

OptimizerState Lbfgs::state_dict() const {
  OptimizerState state;
  state["lbfgs.n_iter"] = int_state(n_iter_);
  state["lbfgs.curv_skips"] = int_state(curv_skips_);
  state["lbfgs.fail_skips"] = int_state(fail_skips_);
  state["lbfgs.fail"] = int_state(fail_ ? 1 : 0);
  state["lbfgs.H_diag"] = double_state(h_diag_);
  state["lbfgs.t"] = double_state(t_);
  state["lbfgs.history"] = int_state(static_cast<int64_t>(old_dirs_.size()));
  for (size_t k = 0; k < old_dirs_.size(); ++k) {
    state[state_key("lbfgs.old_dirs", k)] = old_dirs_[k];
    state[state_key("lbfgs.old_stps", k)] = old_stps_[k];
  }
  if (n_iter_ > 0) {
    state["lbfgs.d"] = d_;
    state["lbfgs.prev_flat_grad"] = prev_flat_grad_;
    state["lbfgs.Bs"] = bs_;
  }
  return state;
}

void Lbfgs::load_state_dict(const OptimizerState& state) {
  // A checkpoint from before the first step holds no L-BFGS state: start afresh.
  if (!state.count("lbfgs.n_iter")) {
    n_iter_ = curv_skips_ = fail_skips_ = 0;
    h_diag_ = 1.0;
    fail_ = true;
    t_ = 0.0;
    old_dirs_.clear();
    old_stps_.clear();
    d_ = prev_flat_grad_ = bs_ = torch::Tensor();
    return;
  }
  const torch::Tensor like = flat_like();
  const int64_t history = load_state_int(state, "lbfgs.history");
  if (history < 0 || history > options_.history_size)
    throw UserError("checkpoint: optimizer state 'lbfgs.history' (" + std::to_string(history) +
                    ") exceeds hyp.optim.history_size");
  std::deque<torch::Tensor> dirs, stps;
  for (int64_t k = 0; k < history; ++k) {
    dirs.push_back(load_state_tensor(state, state_key("lbfgs.old_dirs", k), like, true));
    stps.push_back(load_state_tensor(state, state_key("lbfgs.old_stps", k), like, true));
  }
  const int64_t n_iter = load_state_int(state, "lbfgs.n_iter");
  if (n_iter > 0) {
    d_ = load_state_tensor(state, "lbfgs.d", like, true);
    prev_flat_grad_ = load_state_tensor(state, "lbfgs.prev_flat_grad", like, true);
    bs_ = load_state_tensor(state, "lbfgs.Bs", like, true);
  } else {
    d_ = prev_flat_grad_ = bs_ = torch::Tensor();
  }
  n_iter_ = n_iter;
  curv_skips_ = load_state_int(state, "lbfgs.curv_skips");
  fail_skips_ = load_state_int(state, "lbfgs.fail_skips");
  fail_ = load_state_int(state, "lbfgs.fail") != 0;
  h_diag_ = load_state_double(state, "lbfgs.H_diag");
  t_ = load_state_double(state, "lbfgs.t");
  old_dirs_ = std::move(dirs);
  old_stps_ = std::move(stps);
}

}  // namespace fullbatch
