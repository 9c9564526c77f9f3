#include "fullbatch/analysis/landscape.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/param_snapshot.h"
#include "fullbatch/common/rng.h"

namespace fullbatch {
namespace {

constexpr uint64_t kLandscapeDirection = 3;

nlohmann::json number(double v) {
  // JSON has no NaN or infinity: a diverged point is null.
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// The mean block loss and accuracy, with the full loss when asked.
nlohmann::json point_value(TrainingObjective& objective, const FullLossTerms& terms) {
  nlohmann::json out;
  if (!terms.on) {
    const ObjectiveValue v = objective.value(false);
    out["loss"] = number(v.loss);
    out["accuracy"] = number(v.accuracy);
    return out;
  }
  // The reference's full loss: the block losses, the weight decay and the penalty, each block's
  // gradient taken on its own.
  double loss_sum = 0, correct = 0, grad_sq_sum = 0;
  const TensorList& params = objective.params();
  objective.for_each_block([&](int64_t b, const Block& block, const BlockForward& forward) {
    const BlockGradient g = block_gradient(forward, params);
    const double norm = global_norm(g.grads).item<double>();
    grad_sq_sum += norm * norm;
    loss_sum += g.loss.item<double>() * objective.block_weight();
    correct += g.logits.argmax(1).eq(block.labels.to(g.logits.device())).sum().item<double>();
  });
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params[0].device();
  const std::vector<double> t = sum_over_ranks(objective.comm(), {loss_sum, correct, grad_sq_sum}, device);
  const double loss = t[0];
  const double theta = global_norm(params).item<double>();
  const double full = loss + terms.weight_decay / 2 * theta * theta +
                      terms.lr / 4 * terms.alpha * t[2] / objective.num_blocks();
  out["loss"] = number(loss);
  out["accuracy"] = number(100.0 * t[1] / objective.images());
  out["full_loss"] = number(full);
  return out;
}

}  // namespace

DirectionNorm parse_direction_norm(const std::string& name) {
  if (name == "filter") return DirectionNorm::kFilter;
  if (name == "layer") return DirectionNorm::kLayer;
  if (name == "weight") return DirectionNorm::kWeight;
  throw UserError("analysis.landscape.norm: '" + name + "' must be filter, layer or weight");
}

TensorList random_direction(const TensorList& params, const DirectionOptions& options, uint64_t index) {
  torch::NoGradGuard no_grad;
  at::Generator gen = keyed_generator(options.seed, Stream::kAnalysis, {kLandscapeDirection, index});
  TensorList out;
  for (const auto& p : params) {
    // Drawn on the CPU in float32 for every parameter, in order, so the direction does not depend
    // on the device.
    torch::Tensor d = torch::randn(p.sizes(), gen, torch::kFloat32);
    const torch::Tensor w = p.detach().to(torch::kCPU, torch::kFloat32);
    if (p.dim() <= 1) {
      if (options.ignore_bias_bn) d.zero_();
      else d.copy_(w);
    } else if (options.norm == DirectionNorm::kFilter) {
      for (int64_t f = 0; f < d.size(0); ++f) d[f].mul_(w[f].norm() / (d[f].norm() + 1e-10));
    } else if (options.norm == DirectionNorm::kLayer) {
      d.mul_(w.norm() / (d.norm() + 1e-10));
    } else {
      d.mul_(w);
    }
    out.push_back(d.to(p.device(), p.scalar_type()));
  }
  return out;
}

std::vector<double> linspace(double lo, double hi, int64_t num) {
  std::vector<double> v;
  if (num == 1) return {lo};
  for (int64_t i = 0; i < num; ++i) v.push_back(lo + (hi - lo) * static_cast<double>(i) / (num - 1));
  return v;
}

ResumableTable::ResumableTable(std::string path, nlohmann::json header, Communicator& comm,
                               const torch::Device& device)
    : path_(std::move(path)), writer_(comm.is_root()) {
  double done = 0;
  if (writer_) {
    namespace fs = std::filesystem;
    if (fs::exists(path_)) {
      std::ifstream in(path_, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      const std::string content = text.str();
      std::string kept;
      size_t begin = 0;
      bool first = true;
      while (begin < content.size()) {
        const size_t end = content.find('\n', begin);
        if (end == std::string::npos) break;  // a half-written last line
        const std::string line = content.substr(begin, end - begin);
        const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
        if (parsed.is_discarded()) break;
        if (first) {
          if (parsed != header)
            throw UserError(path_ + ": computed with other settings (" + parsed.dump() +
                            "); remove the file or write elsewhere with --out");
          first = false;
        } else {
          ++done;
        }
        kept += line + "\n";
        begin = end + 1;
      }
      if (first) kept = header.dump() + "\n";
      std::ofstream out(path_, std::ios::binary | std::ios::trunc);
      out << kept;
      if (!out) throw UserError(path_ + ": cannot write");
    } else {
      if (!fs::path(path_).parent_path().empty()) fs::create_directories(fs::path(path_).parent_path());
      std::ofstream out(path_, std::ios::binary);
      out << header.dump() << "\n";
      if (!out) throw UserError(path_ + ": cannot write");
    }
  }
  done_ = static_cast<int64_t>(sum_over_ranks(comm, {done}, device)[0]);
}

void ResumableTable::append(const nlohmann::json& line) {
  ++done_;
  if (!writer_) return;
  std::ofstream out(path_, std::ios::binary | std::ios::app);
  out << line.dump() << "\n";
  out.flush();
  if (!out) throw UserError(path_ + ": cannot write (disk full?)");
}

std::vector<nlohmann::json> read_table(const std::string& path, nlohmann::json* header) {
  std::ifstream in(path);
  if (!in) throw UserError(path + ": no such file");
  std::vector<nlohmann::json> rows;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (parsed.is_discarded()) throw UserError(path + ": unreadable line " + std::to_string(rows.size() + 2));
    if (first) {
      if (header) *header = parsed;
      first = false;
    } else {
      rows.push_back(std::move(parsed));
    }
  }
  return rows;
}

void compute_landscape(TrainingObjective& objective, const Grid& grid, const TensorList& d1,
                       const TensorList& d2, const FullLossTerms& terms, ResumableTable& table) {
  const int64_t nx = static_cast<int64_t>(grid.xs.size());
  const int64_t ny = grid.ys.empty() ? 1 : static_cast<int64_t>(grid.ys.size());
  for (int64_t p = table.done(); p < nx * ny; ++p) {
    const double x = grid.xs[p % nx];
    const double y = grid.ys.empty() ? 0.0 : grid.ys[p / nx];
    ParameterSnapshot snapshot(objective.params());
    if (x != 0.0) snapshot.add(d1, x);
    if (y != 0.0) snapshot.add(d2, y);
    nlohmann::json line = point_value(objective, terms);
    snapshot.restore();
    line["index"] = p;
    line["x"] = x;
    if (!grid.ys.empty()) line["y"] = y;
    table.append(line);
  }
}

ModelState model_state(torch::nn::Module& model) {
  ModelState s;
  for (const auto& item : model.named_parameters()) s[item.key()] = item.value().detach().clone();
  for (const auto& item : model.named_buffers()) s[item.key()] = item.value().detach().clone();
  return s;
}

void set_interpolated_state(torch::nn::Module& model, const ModelState& a, const ModelState& b, double t) {
  torch::NoGradGuard no_grad;
  auto set = [&](const std::string& name, torch::Tensor& target) {
    const auto ia = a.find(name);
    const auto ib = b.find(name);
    if (ia == a.end() || ib == b.end() || !ia->second.sizes().equals(ib->second.sizes()))
      throw UserError("interpolation: the two checkpoints differ in '" + name +
                      "' (missing or of another shape): not the same architecture");
    if (!torch::isFloatingType(target.scalar_type())) {
      target.copy_(ia->second);
      return;
    }
    const torch::Tensor va = ia->second.to(target.device(), torch::kFloat64);
    const torch::Tensor vb = ib->second.to(target.device(), torch::kFloat64);
    target.copy_(va * (1.0 - t) + vb * t);
  };
  for (auto& item : model.named_parameters()) set(item.key(), item.value());
  for (auto& item : model.named_buffers()) set(item.key(), item.value());
}

void compute_interpolation(TrainingObjective& objective, const ModelState& a, const ModelState& b,
                           const std::vector<double>& ts, bool recompute_batchnorm,
                           const std::function<nlohmann::json()>& test, ResumableTable& table) {
  for (int64_t p = table.done(); p < static_cast<int64_t>(ts.size()); ++p) {
    set_interpolated_state(objective.model(), a, b, ts[p]);
    if (recompute_batchnorm) objective.recompute_batchnorm_statistics();
    nlohmann::json line = point_value(objective, FullLossTerms{});
    if (test) line.update(test());
    line["index"] = p;
    line["t"] = ts[p];
    table.append(line);
  }
  set_interpolated_state(objective.model(), a, b, 0.0);
}

}  // namespace fullbatch
