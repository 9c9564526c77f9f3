#pragma once
// The optimizer's settings: hyp.optim.*, hyp.optim_modification.* and
// hyp.only_linear_layers_weight_decay, with the reference's key names, defined once. The config
// holds them as they are (Config::hyp.optim; config/key_table.cpp parses and checks each key) and
// make_optimizer (optim/optimizer.h) reads them as they are, so there is no second copy whose
// defaults could drift. They sit in config/ because config/ is below optim/: the struct is plain
// data and knows no optimizer. An optimizer ignores the keys it does not use. Defaults are the
// reference's gd.yaml; reference_optimizer_settings (optim/optimizer.h) gives each optimizer's own.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace fullbatch {

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

}  // namespace fullbatch
