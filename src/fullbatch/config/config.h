#pragma once
// Every setting of a run, typed: each key's text is parsed and checked once, when it is set.
// Key names and meanings follow the reference implementation's Hydra config (data.*, model.*,
// hyp.*, impl.*), so its configs translate one to one. The table in key_table.cpp is the single
// list of keys: parsing, validation, help and config.yaml come from it. The config knows
// nothing of the models, data or training that read it; model.name is checked against the
// model zoo where the zoo is known (training/options.h).
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/config/enums.h"
#include "fullbatch/config/optimizer_settings.h"

namespace fullbatch {

struct Config {
  std::string name = "run";
  std::string preset;  // informational: the preset the run started from
  uint64_t seed = 0;

  struct Data {
    std::string name = "cifar10";
    std::string path;  // empty: the dataset's standard location
    int64_t size = 0;  // first N training images; 0 = all
    int64_t test_size = 0;  // first N test images; 0 = all
    int64_t batch_size = 128;
    Augmentation augmentations = Augmentation::kCropFlip;
    int64_t crop_padding = 4;
    int64_t fixed_augmentations = 0;  // N x fixed augmented copies; 0 = live augmentation
    int64_t pixels = 0;  // image folders: side of the training crop and evaluation crop; 0 = default
    int64_t resize = 0;  // image folders: shorter side before cropping; 0 = default
  } data;

  struct Model {
    std::string name = "resnet18";
    int64_t width = 64;
    bool zero_init_residual = false;
    std::string path;  // model.name=torchscript: the saved TorchScript module
  } model;

  struct Hyp {
    int64_t steps = 300;  // full-batch steps, or epochs when training stochastically
    bool train_stochastic = false;
    bool train_semi_stochastic = false;
    bool shuffle = false;
    bool sample_with_replacement = false;
    int64_t train_switch_stochastic = 0;  // >0: switch from full batch to SGD after this step
    // hyp.optim, hyp.optim_modification and hyp.only_linear_layers_weight_decay: the
    // optimizer's own settings struct (docs/optimizers.md); name is stored in its canonical spelling.
    OptimizerSettings optim;
    int64_t warmup = 5;
    ScheduleSpec scheduler;                  // cosine-decay
    double grad_clip = 0.0;                  // l2 (or inf) norm of the full gradient; 0 = off
    double grad_clip_norm = 2.0;             // 2 or inf
    double batch_clip = 0.0;                 // per-block clipping; 0 = off
    struct GradReg {
      double block_strength = 0.0;
      double acc_strength = 0.0;
      int64_t every_nth_block = 1;  // penalize one block in N (rotating with the step), term x N
      double eps = 1e-2;
      GradRegImpl implementation = GradRegImpl::kForwardDifferences;
    } grad_reg;
    int64_t sub_batch = 128;  // a block is cut into max(n / sub_batch, 1) chunks; 0 = whole block
    struct GradNoise {
      double additive = 0.0;
      double multiplicative = 0.0;
    } grad_noise;
    double label_smoothing = 0.0;
    bool evaluate_ema = false;
    double eval_ema_momentum = 0.99;
    int64_t stop_at_full_training_accuracy = 0;  // stop after K steps at 100% train accuracy
    double stop_at_val_accuracy = 0.0;  // stop at the first evaluation reaching this % (0 = off)
  } hyp;

  struct Impl {
    int64_t validate_every_nth_step = 100;
    int64_t threads = 0;  // 0 = all cores
    std::string device = "auto";
    int64_t eval_batch_size = 1000;
    bool test_time_flips = false;
    Precision mixed_precision = Precision::kNone;
    AccumulationDtype accumulation_dtype = AccumulationDtype::kFloat32;
    ChannelsLast channels_last = ChannelsLast::kAuto;
    bool deterministic = false;
    int64_t blocks_per_pass = 1;  // full-batch blocks per forward/backward pass (ghost BatchNorm)
    bool progress = true;
    int64_t checkpoint_every = 0;  // impl.checkpoint.save_every_nth_step
    int64_t checkpoint_keep = 2;
    double dist_timeout_s = 300.0;
  } impl;

  // num points evenly from min to max (a landscape's axis, an interpolation's t).
  struct Range {
    double min = 0, max = 1;
    int64_t num = 1;
  };

  // Curvature, flatness and landscapes (docs/analysis.md): read by `fullbatch analyze`, and by
  // training when analysis.every_nth_step > 0. None of them changes what training computes.
  struct Analysis {
    int64_t every_nth_step = 0;  // top Hessian eigenvalue into metrics.jsonl every N steps
    bool record_trace = false;   // ... and Hutchinson's trace
    int64_t data_size = 0;       // first N training images (unaugmented); 0 = the run's data.size
    std::string batchnorm = "eval";  // eval (running stats, as the reference) or train (batch stats)
    // What the curvature probes measure: loss (the mean block loss) or loss+wd (plus
    // hyp.optim.weight_decay/2 ||theta||^2, the objective gradient descent with decay follows).
    std::string objective = "loss";
    int64_t eigenvalues = 1;
    int64_t lanczos_iterations = 20;
    double tolerance = 1e-3;  // relative Ritz residual at which Lanczos stops early
    int64_t trace_samples = 10;
    std::string fd_eps = "1e-1,1e-2,1e-3,1e-4";
    double sam_rho = 0.05;
    double flatness_threshold = 1.0;  // loss that ends the walk (the reference's defaults)
    double flatness_increment = 0.1;
    int64_t flatness_max_steps = 1000;
    struct Landscape {
      std::string norm = "filter";  // filter, layer or weight
      bool ignore_bias_bn = true;   // directions are zero on biases and BatchNorm parameters
      bool full_loss = false;  // + weight_decay/2 ||theta||^2 + lr/4 alpha mean ||g_b||^2
      Range x{-1.0, 1.0, 51};  // the reference's 1-D defaults
      Range y{-1.0, 1.0, 0};   // num 0: a 1-D landscape
    } landscape;
    Range interpolation{0.0, 1.0, 11};  // t from the first checkpoint (0) to the second (1)
    // At each t, BatchNorm running statistics recomputed over the training blocks (else the two
    // checkpoints' statistics interpolated linearly).
    bool interpolation_recompute_batchnorm = true;
  } analysis;
};

struct KeyInfo {
  std::string key;
  std::string type;  // int, float, bool, string, numbers (as `fullbatch keys` lists them)
  std::string help;
  bool affects_results;  // a resumed run must agree on it
  // config.yaml holds the value as a YAML string ("0.9,0.999" stays one text, a name is not
  // reparsed), not as the scalar its text would load as.
  bool written_as_text = false;
};

// All keys, in the order config.yaml lists them.
const std::vector<KeyInfo>& config_keys();

// Whether a key changes a run's results (a resumed run must agree on it).
bool key_affects_results(const std::string& key);

// Sets one dotted key from its text; throws UserError naming the key (and the closest known key
// when the key is unknown). `origin` names where the value came from, for the message.
void set_key(Config& config, const std::string& key, const std::string& value,
             const std::string& origin = "");

// The value of a key, formatted so that set_key(format) reproduces it exactly.
std::string get_key(const Config& config, const std::string& key);

// "key=value" -> set_key; throws UserError for a malformed override.
void apply_override(Config& config, const std::string& assignment);

// Reads a YAML file of nested keys (data: {size: 512}) or dotted keys (data.size: 512).
void apply_yaml_file(Config& config, const std::string& path);
void apply_yaml_text(Config& config, const std::string& text, const std::string& origin);

// The resolved config as nested YAML text.
std::string to_yaml(const Config& config);

// All keys and values, flattened.
std::vector<std::pair<std::string, std::string>> flatten(const Config& config);

// Keys marked affects_results whose values differ between `a` and `b`, in table order: what a
// resumed run must refuse.
std::vector<std::string> result_differences(const Config& a, const Config& b);

// Checks relations between keys that no single value shows; throws UserError.
void validate(const Config& config);

// Closest known key by edit distance, or "" when nothing is close.
std::string closest_key(const std::string& key);

}  // namespace fullbatch
