#include "fullbatch/optim/stability.h"

#include <cstdio>

namespace fullbatch {
namespace {

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

StabilityLimit stability_limit(const OptimizerSettings& s) {
  StabilityLimit out;
  const std::string name = canonical_optimizer_name(s.name);
  const std::string modification = canonical_modification_name(s.modification.name);
  if (!modification.empty() && modification != "none") {
    out.reason = "hyp.optim_modification " + modification +
                 " changes the step beyond a fixed multiple of the gradient: no single threshold";
    return out;
  }
  if (name != "Gradient Descent") {
    out.reason = "hyp.optim.name " + name +
                 " adapts its step to the gradient's history or size: no single threshold";
    return out;
  }
  const double m = s.momentum, d = s.dampening;
  if (m == 0) {
    out.scale = 2.0;
    out.label = "2/lr (gradient descent)";
    return out;
  }
  if (!s.nesterov) {
    if (d >= 1) {
      out.reason = "hyp.optim.dampening " + fixed(d) + " >= 1: the momentum buffer never moves";
      return out;
    }
    out.scale = 2.0 * (1 + m) / (1 - d);
    out.label = d == 0 ? "(2+2m)/lr (heavy ball, m=" + fixed(m) + ")"
                       : "2(1+m)/((1-d) lr) (heavy ball, m=" + fixed(m) + ", d=" + fixed(d) + ")";
    return out;
  }
  out.scale = 2.0 * (1 + m) / (1 + m + m * (1 - d));
  out.label = d == 0
                  ? "(2+2m)/((1+2m) lr) (Nesterov, m=" + fixed(m) + ")"
                  : "2(1+m)/((1+m+m(1-d)) lr) (Nesterov, m=" + fixed(m) + ", d=" + fixed(d) + ")";
  return out;
}

}  // namespace fullbatch
