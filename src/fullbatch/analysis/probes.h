#pragma once
// What a trained (or training) model looks like around its parameters, measured on the training
// objective (analysis/objective.h): its curvature (top Hessian eigenvalues, trace), the error of
// the regularizer's finite-difference Hessian-vector products, SAM-sharpness, empirical flatness
// and the gradient statistics the reference logs (norms, per-block norms, signal-to-noise ratio,
// gradient noise scale, momentum-gradient cosine). Each returns plain numbers; files and plots
// are the caller's (run/analyze.h, report/).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/analysis/curvature.h"
#include "fullbatch/analysis/objective.h"
#include "fullbatch/config/enums.h"

namespace fullbatch {

// The Hessian of the objective's mean loss as an operator on flat float64 vectors.
LinearOperator hessian_operator(TrainingObjective& objective);

struct CurvatureOptions {
  LanczosOptions lanczos;
  int64_t trace_samples = 0;  // 0: no trace
};

struct Curvature {
  EigenResult top;
  std::optional<TraceResult> trace;
  double seconds = 0;
};

Curvature measure_curvature(TrainingObjective& objective, const CurvatureOptions& options);

// The regularizer's finite-difference H v against the exact product, per block, along the
// regularizer's own direction v = g_b (its strength alpha only scales v, and eps_n = eps / ||v||
// cancels it). Relative error ||H v_fd - H v|| / ||H v||, averaged (image-weighted) and maximized
// over blocks, for forward and central differences.
struct FiniteDifferenceError {
  double eps = 0;
  double forward_mean = 0, forward_max = 0;
  double central_mean = 0, central_max = 0;
};
std::vector<FiniteDifferenceError> finite_difference_error(TrainingObjective& objective,
                                                           const std::vector<double>& eps);

// L(theta + rho g / ||g||) - L(theta), g the full gradient.
struct Sharpness {
  double rho = 0;
  double loss = 0;
  double perturbed_loss = 0;
  double sharpness = 0;
};
Sharpness sam_sharpness(TrainingObjective& objective, double rho);

// The reference's "empirical flatness": walk theta_k = theta + k * increment * d (d a normalized
// random direction) until the loss exceeds `threshold` (an absolute loss, as the reference's);
// k is the index of the first point theta_k whose loss exceeds it (0 when theta itself does), as
// the reference's perturb2threshold returns its counter. The reference reports ||d|| * k; the
// distance to that point is increment * ||d|| * k. Parameters are restored (the reference leaves
// them perturbed) and the walk stops after max_steps (the reference has no cap; then k =
// max_steps and `exceeded` is false).
struct Flatness {
  int64_t steps = 0;              // k
  double reference_value = 0;     // ||d|| * k
  double distance = 0;            // increment * ||d|| * k
  bool exceeded = false;          // false: max_steps reached first
  double loss = 0;                // at theta
  double loss_at_end = 0;         // at theta_k
};
Flatness empirical_flatness(TrainingObjective& objective, const TensorList& direction,
                            double threshold, double increment, int64_t max_steps);

struct GradientStatistics {
  double parameter_norm = 0;
  double gradient_norm = 0;               // of the full (mean) gradient
  std::vector<double> block_gradient_norms;
  // ||mu|| / (||sigma|| + 1e-10): mu and sigma the per-coordinate mean and (unbiased) standard
  // deviation of the block gradients, as the reference's gradient SNR.
  double signal_to_noise = 0;
  // B_simple = S / G by McCandlish et al.'s unbiased estimators from the block gradients of
  // b images and their mean over the n used: with g_small = mean_b ||g_b||^2, g_big = ||mu||^2,
  // S = (g_small - g_big) / (1/b - 1/n), G = (n g_big - b g_small) / (n - b), as the reference.
  // Undefined (empty, with the reason) when the images used are no more than one block, or when
  // the estimate of |G|^2 is 0.
  std::optional<double> noise_scale;
  std::string noise_scale_reason;
  std::optional<double> momentum_cosine;  // cos(momentum buffer, G) when a buffer is given
};
GradientStatistics gradient_statistics(TrainingObjective& objective,
                                       const TensorList& momentum = {});

}  // namespace fullbatch
