#pragma once
// Loss landscapes: the training objective on a 1-D or 2-D grid theta + x d1 + y d2 along random
// directions normalized to the parameters (filter-, layer- or weight-wise, as Li et al. and the
// reference do), and on the line between two checkpoints (parameters and BatchNorm buffers
// interpolated). Results go to a JSON-lines file, one point a line, written as they are computed:
// a killed computation continues where it stopped, and since the directions come from keyed
// generators the resumed file equals an uninterrupted one.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/analysis/objective.h"

namespace fullbatch {

enum class DirectionNorm { kFilter, kLayer, kWeight };
DirectionNorm parse_direction_norm(const std::string& name);  // UserError on an unknown name

struct DirectionOptions {
  DirectionNorm norm = DirectionNorm::kFilter;
  bool ignore_bias_bn = true;  // zero on 1-D parameters (biases, BatchNorm); else equal to them
  uint64_t seed = 0;
};

// Direction `index` (0, 1, ...): Gaussian, keyed by (seed, index), normalized to `params`.
TensorList random_direction(const TensorList& params, const DirectionOptions& options, uint64_t index);

// The terms of the reference's "full loss" beside the mean block loss.
struct FullLossTerms {
  bool on = false;
  double weight_decay = 0;  // + weight_decay / 2 * ||theta||^2
  double lr = 0;            // + lr / 4 * alpha * mean_b ||g_b||^2
  double alpha = 0;
};

struct Grid {
  std::vector<double> xs;
  std::vector<double> ys;  // empty: 1-D
};
std::vector<double> linspace(double lo, double hi, int64_t num);

// A JSONL file whose first line is a header naming what is computed. Opening an existing file
// with the same header keeps its complete lines (a half-written last line is dropped) and says
// how many there are; a different header is a UserError, so settings are never mixed in one file.
class ResumableTable {
 public:
  // Only rank 0 touches the file (`writer`); every rank learns how many lines are done.
  ResumableTable(std::string path, nlohmann::json header, Communicator& comm, const torch::Device& device);
  int64_t done() const { return done_; }
  void append(const nlohmann::json& line);  // rank 0 writes, flushes
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool writer_;
  int64_t done_ = 0;
};

// Lines of a table file after its header (for plots and tests).
std::vector<nlohmann::json> read_table(const std::string& path, nlohmann::json* header = nullptr);

// Evaluates the grid into `table`, skipping the points it already holds. `extra` adds fields
// (e.g. test accuracy) to each point's line. The parameters are restored afterwards.
void compute_landscape(TrainingObjective& objective, const Grid& grid, const TensorList& d1,
                       const TensorList& d2, const FullLossTerms& terms, ResumableTable& table);

// Named model state (parameters and buffers), e.g. from a checkpoint.
using ModelState = std::map<std::string, torch::Tensor>;
ModelState model_state(torch::nn::Module& model);
// Writes (1 - t) a + t b into the model's parameters and floating buffers (integer buffers,
// such as BatchNorm's batch counter, are taken from a).
void set_interpolated_state(torch::nn::Module& model, const ModelState& a, const ModelState& b, double t);

// The line from state a (t = 0) to state b (t = 1): training objective at each t, and
// `test(t)` fields (test loss and accuracy) beside it. With `recompute_batchnorm` the BatchNorm
// running statistics at each t are recomputed over the objective's blocks
// (TrainingObjective::recompute_batchnorm_statistics) instead of interpolated. The model is left
// at state a.
void compute_interpolation(TrainingObjective& objective, const ModelState& a, const ModelState& b,
                           const std::vector<double>& ts, bool recompute_batchnorm,
                           const std::function<nlohmann::json()>& test, ResumableTable& table);

}  // namespace fullbatch
