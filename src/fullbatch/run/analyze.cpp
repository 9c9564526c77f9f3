#include "fullbatch/run/analyze.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "fullbatch/analysis/landscape.h"
#include "fullbatch/analysis/objective.h"
#include "fullbatch/analysis/probes.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/models/weights.h"
#include "fullbatch/run/checkpoint.h"
#include "fullbatch/run/run_dir.h"
#include "fullbatch/training/evaluation.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch {
namespace fs = std::filesystem;
namespace {

// Weights (and, from a checkpoint, the momentum buffers) with the config they were trained with.
struct Source {
  std::string path;      // what was read
  std::string run_path;  // the run directory it belongs to
  Config config;
  ModelState model;      // "conv1.weight", ... parameters and buffers
  TensorList momentum;   // optimizer momentum buffers by parameter index; empty from model.pt
  int64_t step = 0;      // the steps the weights were trained for (the schedule's position)
};

ModelState strip_prefix(const std::map<std::string, torch::Tensor>& state, const std::string& prefix) {
  ModelState out;
  for (const auto& [k, v] : state)
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  return out;
}

void apply_user_config(Config& config, const AnalyzeRequest& r) {
  for (const auto& file : r.configs) apply_yaml_file(config, file);
  for (const auto& o : r.overrides) apply_override(config, o);
}

Source from_checkpoint_file(const std::string& path, const std::string& run_path, const AnalyzeRequest& r) {
  const Checkpoint ckpt = read_checkpoint(path);
  Source s{path, run_path, Config{}, strip_prefix(ckpt.state, "model."), {}, ckpt.step};
  apply_yaml_text(s.config, ckpt.config_yaml, "in checkpoint " + path);
  apply_user_config(s.config, r);
  for (int64_t i = 0;; ++i) {
    auto it = ckpt.state.find("optim.momentum." + std::to_string(i));
    if (it == ckpt.state.end()) break;
    s.momentum.push_back(it->second);
  }
  return s;
}

Source from_weights_file(const std::string& path, const std::string& run_path, const AnalyzeRequest& r) {
  const RunDir run(run_path);
  std::vector<std::string> configs;
  if (fs::exists(run.config_file())) configs.push_back(run.config_file());
  configs.insert(configs.end(), r.configs.begin(), r.configs.end());
  Source s{path, run_path, resolve_config("", configs, r.overrides), {}, {}, 0};
  s.model = unpickle_state_dict(read_file(path), path);
  s.step = s.config.hyp.steps;  // a weights file is a finished run's
  return s;
}

// A run directory means its newest readable checkpoint (it has the momentum buffers), else its
// model.pt; a .ckpt file or a weights file means itself.
Source load_source(const std::string& path, const AnalyzeRequest& r) {
  if (fs::is_directory(path)) {
    const RunDir run(path);
    if (auto found = newest_valid_checkpoint(run)) return from_checkpoint_file(found->path, path, r);
    if (fs::is_regular_file(run.weights_file())) return from_weights_file(run.weights_file(), path, r);
    throw UserError(path + ": neither a checkpoint nor model.pt in this run directory");
  }
  if (!fs::is_regular_file(path)) throw UserError(path + ": no such file or run directory");
  const std::string run_path = fs::path(path).parent_path().string();
  if (fs::path(path).extension() == ".ckpt") {
    // RUN/checkpoints/step_N.ckpt belongs to RUN.
    return from_checkpoint_file(path, fs::path(run_path).parent_path().string(), r);
  }
  return from_weights_file(path, run_path.empty() ? "." : run_path, r);
}

void write_json(const std::string& path, const nlohmann::json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

nlohmann::json to_json(const EigenResult& e) {
  return {{"eigenvalues", e.eigenvalues}, {"residuals", e.residuals}, {"products", e.products},
          {"converged", e.converged}};
}

nlohmann::json curvature_json(const Curvature& c, const LanczosOptions& o) {
  nlohmann::json j = {{"top", to_json(c.top)},
                      {"lanczos_iterations_max", o.max_iterations},
                      {"tolerance", o.tolerance},
                      {"seconds", c.seconds}};
  if (c.trace) j["trace"] = {{"estimate", c.trace->trace}, {"std_error", c.trace->std_error}, {"products", c.trace->products}};
  return j;
}

// What every analysis shares: the process set up, the model with the source's weights, the data.
struct Setup {
  Config config;
  TrainerOptions trainer;
  Execution execution;
  Dataset data;
  ModelPtr model;
};

std::unique_ptr<Setup> make_setup(const Source& source) {
  auto s = std::make_unique<Setup>();
  s->config = source.config;
  s->trainer = trainer_options(source.config);
  s->execution = resolve_execution(s->trainer.execution, s->trainer.model);
  for (const auto& w : apply_process_settings(s->trainer.execution, s->execution))
    std::fprintf(stderr, "fullbatch: warning: %s\n", w.c_str());
  s->data = load_dataset(s->trainer.data);
  to_device(s->data, s->execution.device);
  s->model = build_model(s->trainer, s->data, s->execution);
  load_state_dict(*s->model, source.model, source.path);
  return s;
}

bool wants(const std::vector<std::string>& what, const std::string& name) {
  return std::find(what.begin(), what.end(), name) != what.end();
}

}  // namespace

const std::vector<std::string>& analysis_names() {
  static const std::vector<std::string> names = {"curvature", "fd-error", "sam", "flatness",
                                                  "gradients", "landscape", "interpolation"};
  return names;
}

nlohmann::json run_analysis(const AnalyzeRequest& request, std::shared_ptr<Communicator> comm) {
  std::vector<std::string> what = request.what;
  if (what.empty()) what = {"curvature", "fd-error", "sam", "gradients"};
  for (const auto& w : what)
    if (!wants(analysis_names(), w)) {
      std::string list;
      for (const auto& n : analysis_names()) list += (list.empty() ? "" : ", ") + n;
      throw UserError("analyze --what: unknown analysis '" + w + "' (one of: " + list + ")");
    }
  if (wants(what, "interpolation") && request.other.empty())
    throw UserError("analyze --what interpolation needs --to: the second run or weights file");

  const Source source = load_source(request.source, request);
  const std::string out_dir = request.out_dir.empty() ? RunDir(source.run_path).file("analysis") : request.out_dir;
  if (comm->is_root()) ensure_writable_dir(out_dir);
  auto setup = make_setup(source);
  const AnalysisOptions options = analysis_options(setup->config, setup->execution.channels_last);
  if (options.fd_eps.empty()) throw UserError("analysis.fd_eps: no eps given");
  TrainingObjective objective(*setup->model, setup->data, options.objective, *comm);
  const torch::Device device = setup->execution.device;

  nlohmann::json result = {{"source", source.path}, {"out_dir", out_dir}, {"files", nlohmann::json::array()},
                           {"images", objective.images()}, {"blocks", objective.num_blocks()},
                           {"batchnorm", options.objective.batchnorm_train ? "train" : "eval"}};
  auto record = [&](const std::string& name, const nlohmann::json& j) {
    const std::string path = (fs::path(out_dir) / (name + ".json")).string();
    nlohmann::json full = j;
    full["source"] = source.path;
    full["images"] = objective.images();
    full["batchnorm"] = result["batchnorm"];
    if (comm->is_root()) write_json(path, full);
    result["files"].push_back(path);
    result[name] = j;
  };

  if (wants(what, "curvature")) {
    // Also the cost of a plain gradient over the same data (the fastest of three passes, so that
    // first-pass allocations do not count), for the documented cost ratio.
    ObjectiveValue base;
    double gradient_s = INFINITY;
    for (int pass = 0; pass < 3; ++pass) {
      const auto start = std::chrono::steady_clock::now();
      base = objective.value(true);
      gradient_s = std::min(gradient_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const Curvature c = measure_curvature(objective, options.curvature);
    nlohmann::json j = curvature_json(c, options.curvature.lanczos);
    j["loss"] = base.loss;
    j["objective"] = setup->config.analysis.objective;
    j["objective_note"] =
        options.objective.with_weight_decay
            ? "mean block loss (1/B per block) + weight_decay/2 |theta|^2; no regularizer penalty"
            : "mean block loss (1/B per block); no weight decay, no regularizer penalty";
    j["gradient_pass_seconds"] = gradient_s;
    j["product_cost_in_gradient_passes"] = c.seconds / std::max<int64_t>(c.top.products + (c.trace ? c.trace->products : 0), 1) / gradient_s;
    record("curvature", j);
  }
  if (wants(what, "fd-error")) {
    // The diagnostic follows the regularizer along g_b on whole blocks; settings under which the
    // run's regularizer does something else are refused rather than measured as something else.
    const auto& hyp = setup->config.hyp;
    const int64_t block = setup->config.data.batch_size;
    if (hyp.sub_batch > 0 && block / hyp.sub_batch >= 2)
      throw UserError(
          "--what fd-error: hyp.sub_batch=" + std::to_string(hyp.sub_batch) +
          " cuts each block of data.batch_size=" + std::to_string(block) +
          " into chunks, which the diagnostic does not follow (analyze with data.batch_size=" +
          std::to_string(hyp.sub_batch) + " to measure chunk-sized blocks)");
    if (hyp.grad_reg.acc_strength != 0)
      throw UserError(
          "--what fd-error: hyp.grad_reg.acc_strength=" +
          std::to_string(hyp.grad_reg.acc_strength) +
          " adds the full gradient to the regularizer's direction, which the diagnostic does not "
          "follow (analyze with hyp.grad_reg.acc_strength=0 to measure the block term)");
    // In training mode whatever analysis.batchnorm says: the regularizer's passes run in it.
    ObjectiveOptions train_mode = options.objective;
    train_mode.batchnorm_train = true;
    TrainingObjective as_trained(*setup->model, setup->data, train_mode, *comm);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& e : finite_difference_error(as_trained, options.fd_eps))
      rows.push_back({{"eps", e.eps}, {"forward_mean", e.forward_mean}, {"forward_max", e.forward_max},
                      {"central_mean", e.central_mean}, {"central_max", e.central_max}});
    record("fd_error", {{"relative_error", rows}, {"batchnorm_of_this_diagnostic", "train"}});
  }
  if (wants(what, "sam")) {
    const Sharpness s = sam_sharpness(objective, options.sam_rho);
    record("sam", {{"rho", s.rho}, {"loss", s.loss}, {"perturbed_loss", s.perturbed_loss}, {"sharpness", s.sharpness}});
  }
  if (wants(what, "flatness")) {
    const TensorList d = random_direction(objective.params(), options.directions, 100);
    const Flatness f = empirical_flatness(objective, d, options.flatness_threshold,
                                          options.flatness_increment, options.flatness_max_steps);
    record("flatness", {{"steps", f.steps}, {"reference_value", f.reference_value}, {"distance", f.distance},
                        {"exceeded", f.exceeded}, {"loss", f.loss}, {"loss_at_end", f.loss_at_end},
                        {"threshold", options.flatness_threshold}, {"increment", options.flatness_increment}});
  }
  if (wants(what, "gradients")) {
    std::vector<torch::Tensor> momentum;
    for (auto& m : source.momentum) momentum.push_back(m.to(device));
    if (!momentum.empty() && momentum.size() != objective.params().size()) momentum.clear();
    const GradientStatistics g = gradient_statistics(objective, momentum);
    nlohmann::json j = {{"parameter_norm", g.parameter_norm},
                        {"gradient_norm", g.gradient_norm},
                        {"block_gradient_norms", g.block_gradient_norms},
                        {"signal_to_noise", g.signal_to_noise}};
    j["noise_scale"] = g.noise_scale ? nlohmann::json(*g.noise_scale) : nlohmann::json(nullptr);
    if (!g.noise_scale) j["noise_scale_reason"] = g.noise_scale_reason;
    if (g.momentum_cosine) j["momentum_cosine"] = *g.momentum_cosine;
    record("gradients", j);
  }
  if (wants(what, "landscape")) {
    const bool two_d = !options.grid.ys.empty();
    const TensorList d1 = random_direction(objective.params(), options.directions, 0);
    const TensorList d2 = random_direction(objective.params(), options.directions, 1);
    const auto& l = setup->config.analysis.landscape;
    nlohmann::json header = {{"kind", two_d ? "landscape-2d" : "landscape-1d"}, {"source", source.path},
                             {"x", options.grid.xs}, {"norm", l.norm}, {"ignore_bias_bn", l.ignore_bias_bn},
                             {"seed", setup->config.seed}, {"images", objective.images()},
                             {"batchnorm", result["batchnorm"]}, {"full_loss", l.full_loss}};
    const FullLossTerms terms = full_loss_terms(setup->config, source.step);
    if (terms.on) header["full_loss_lr"] = terms.lr;  // the schedule's lr at the source's step
    if (two_d) header["y"] = options.grid.ys;
    const std::string path = (fs::path(out_dir) / (two_d ? "landscape_2d.jsonl" : "landscape_1d.jsonl")).string();
    ResumableTable table(path, header, *comm, device);
    compute_landscape(objective, options.grid, d1, d2, terms, table);
    result["files"].push_back(path);
  }
  if (wants(what, "interpolation")) {
    const Source other = load_source(request.other, request);
    const ModelState a = model_state(*setup->model);
    auto test = [&]() -> nlohmann::json {
      const Evaluation e = evaluate_model(*setup->model, setup->data, setup->trainer.eval, setup->execution, *comm);
      return {{"test_loss", e.loss}, {"test_accuracy", e.accuracy}};
    };
    nlohmann::json header = {{"kind", "interpolation"},
                             {"from", source.path},
                             {"to", other.path},
                             {"t", options.interpolation},
                             {"images", objective.images()},
                             {"batchnorm", result["batchnorm"]},
                             {"recompute_batchnorm", options.recompute_batchnorm}};
    const std::string path = (fs::path(out_dir) / "interpolation.jsonl").string();
    ResumableTable table(path, header, *comm, device);
    compute_interpolation(objective, a, other.model, options.interpolation,
                          options.recompute_batchnorm, test, table);
    result["files"].push_back(path);
  }
  return result;
}

nlohmann::json curvature_fields(Trainer& trainer, const AnalysisOptions& options, Communicator& comm) {
  // Every rank runs the hook on its own copy of the model; blocks are dealt like training's.
  TrainingObjective objective(trainer.model(), trainer.data(), options.objective, comm);
  CurvatureOptions c = options.curvature;
  if (!options.record_trace) c.trace_samples = 0;
  const Curvature result = measure_curvature(objective, c);
  nlohmann::json j = {
      {"top_eigenvalue", result.top.eigenvalues.empty() ? 0.0 : result.top.eigenvalues[0]},
      {"curvature_products", result.top.products + (result.trace ? result.trace->products : 0)},
      {"curvature_time_s", result.seconds},
      // An unconverged Lanczos value underestimates lambda_max: say so per point.
      {"curvature_converged", result.top.converged},
      {"curvature_residual", result.top.residuals.empty() ? 0.0 : result.top.residuals[0]}};
  if (result.trace) j["hessian_trace"] = result.trace->trace;
  return j;
}

}  // namespace fullbatch
