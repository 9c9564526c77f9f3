#include "fullbatch/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <regex>
#include <type_traits>
#include <sstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/names.h"
#include "fullbatch/common/parse.h"
#include "fullbatch/common/strings.h"

namespace fullbatch {
namespace {

// A value is checked when it is set, so an error always names the key that carries it.
using Check = std::function<std::string(double)>;  // "" = fine, else what is wrong

// Thrown by a key's setter with what is wrong with the value; set_key turns it into a UserError
// that names the key, the value and where it came from.
struct BadValue {
  std::string why;
};

struct KeyDef {
  KeyInfo info;
  std::function<void(Config&, const std::string&)> set;  // throws BadValue
  std::function<std::string(const Config&)> get;
};

Check at_least(double lo) {
  return [lo](double v) {
    return v >= lo ? std::string() : "must be >= " + format_double(lo);
  };
}
Check in_range(double lo, double hi) {
  return [lo, hi](double v) {
    return (v >= lo && v <= hi) ? std::string()
                                : "must be in [" + format_double(lo) + ", " + format_double(hi) + "]";
  };
}

// Throws BadValue with what `check` says is wrong with `v`, if anything.
void require(const Check& check, double v) {
  if (!check) return;
  const std::string why = check(v);
  if (!why.empty()) throw BadValue{why};
}

bool parse_number(const std::string& text, int64_t& out) { return parse_int(text, out); }
bool parse_number(const std::string& text, double& out) { return parse_float(text, out); }
std::string format_number(int64_t v) { return std::to_string(v); }
std::string format_number(double v) { return format_double(v); }

// A numeric key: parsed strictly, checked, and formatted so that it parses back exactly.
template <class T, class Ref>
KeyDef number_key(std::string key, std::string help, bool affects, Ref ref, Check check) {
  constexpr bool kInt = std::is_integral_v<T>;
  return {{key, kInt ? "int" : "float", help, affects},
          [ref, check](Config& c, const std::string& text) {
            T v{};
            if (!parse_number(text, v)) throw BadValue{kInt ? "expected an integer" : "expected a number"};
            require(check, static_cast<double>(v));
            ref(c) = v;
          },
          [ref](const Config& c) { return format_number(ref(const_cast<Config&>(c))); }};
}

template <class Ref>
KeyDef int_key(std::string key, std::string help, bool affects, Ref ref, Check check = {}) {
  return number_key<int64_t>(std::move(key), std::move(help), affects, ref, std::move(check));
}

template <class Ref>
KeyDef float_key(std::string key, std::string help, bool affects, Ref ref, Check check = {}) {
  return number_key<double>(std::move(key), std::move(help), affects, ref, std::move(check));
}

template <class Ref>
KeyDef uint_key(std::string key, std::string help, bool affects, Ref ref) {
  return {{key, "int", help, affects},
          [ref](Config& c, const std::string& text) {
            int64_t v;
            if (!parse_int(text, v) || v < 0) throw BadValue{"expected a non-negative integer"};
            ref(c) = static_cast<uint64_t>(v);
          },
          [ref](const Config& c) { return std::to_string(ref(const_cast<Config&>(c))); }};
}


template <class Ref>
KeyDef bool_key(std::string key, std::string help, bool affects, Ref ref) {
  return {{key, "bool", help, affects},
          [ref](Config& c, const std::string& text) {
            bool v;
            if (!parse_bool(text, v)) throw BadValue{"expected true or false"};
            ref(c) = v;
          },
          [ref](const Config& c) { return ref(const_cast<Config&>(c)) ? "true" : "false"; }};
}

template <class Ref>
KeyDef string_key(std::string key, std::string help, bool affects, Ref ref,
                  std::function<std::string(const std::string&)> check = {}) {
  return {{key, "string", help, affects},
          [ref, check](Config& c, const std::string& text) {
            if (!is_printable_utf8(text))
              throw BadValue{"must be printable UTF-8 text (no control characters)"};
            if (check) {
              std::string why = check(text);
              if (!why.empty()) throw BadValue{why};
            }
            ref(c) = text;
          },
          [ref](const Config& c) { return ref(const_cast<Config&>(c)); }};
}

// "a, b, c"
std::string joined(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

std::function<std::string(const std::string&)> one_of(std::vector<std::string> options) {
  return [options](const std::string& v) {
    if (std::find(options.begin(), options.end(), v) != options.end()) return std::string();
    return "must be one of: " + joined(options);
  };
}

// A key whose value is one of a few names, each with lower-case aliases (hyp.optim.name takes
// the reference's "L-BFGS" and "lbfgs" alike; common/names.h holds the lists, which the
// components read too); the value is stored in the canonical spelling, so config.yaml and resume
// compare one form.
template <class Ref>
KeyDef canonical_key(std::string key, std::string help, bool affects, Ref ref,
                     const std::vector<Spelling>& names) {
  return {{key, "string", help, affects},
          [ref, &names](Config& c, const std::string& text) {
            const Spelling* spelling = find_spelling(text, names);
            if (spelling == nullptr) throw BadValue{"must be one of: " + joined(names_of(names))};
            ref(c) = spelling->name;
          },
          [ref](const Config& c) { return ref(const_cast<Config&>(c)); }};
}

// A comma-separated list of exactly `n` numbers, each checked (hyp.optim.betas, fista_mod).
std::function<std::string(const std::string&)> number_list(size_t n, Check check) {
  return [n, check](const std::string& v) {
    std::vector<double> values;
    std::stringstream ss(v);
    for (std::string part; std::getline(ss, part, ',');) {
      double x;
      if (!parse_float(part, x)) return std::string("expected " + std::to_string(n) + " comma-separated numbers");
      values.push_back(x);
    }
    if (values.size() != n) return "expected " + std::to_string(n) + " comma-separated numbers";
    for (double x : values) {
      std::string why = check ? check(x) : "";
      if (!why.empty()) return "each " + why;
    }
    return std::string();
  };
}

// A key whose value is one of an enum's spellings (config/enums.h).
template <class Ref>
KeyDef enum_key(std::string key, std::string help, bool affects, Ref ref) {
  using E = std::decay_t<decltype(ref(std::declval<Config&>()))>;
  return {{key, "string", help, affects},
          [ref](Config& c, const std::string& text) {
            E value;
            if (!parse_enum(text, value)) {
              std::string list;
              for (const auto& entry : enum_names(E{})) list += (list.empty() ? "" : ", ") + entry.second;
              throw BadValue{"must be one of: " + list};
            }
            ref(c) = value;
          },
          [ref](const Config& c) { return to_string(ref(const_cast<Config&>(c))); }};
}

KeyDef schedule_key(std::string key, std::string help) {
  return {{key, "string", help, true},
          [](Config& c, const std::string& text) {
            if (!parse_schedule(text, c.hyp.scheduler))
              throw BadValue{
                  "must be constant, cosine-decay, linear-decay or cosine-N with N > 0 (e.g. "
                  "cosine-4000)"};
          },
          [](const Config& c) { return to_string(c.hyp.scheduler); }};
}

// A comma-separated list of positive numbers (analysis.fd_eps).
std::string check_eps_list(const std::string& v) {
  if (parse_positive_list(v).empty()) return "must be a comma-separated list of numbers > 0";
  return "";
}

std::string check_device(const std::string& v) {
  static const std::regex pattern("auto|cpu|cuda|cuda:[0-9]+");
  return std::regex_match(v, pattern) ? "" : "must be auto, cpu, cuda or cuda:N";
}

// PREFIXmin, PREFIXmax and PREFIXnum of a Config::Range.
template <class Ref>
void append_range_keys(std::vector<KeyDef>& table, const std::string& prefix, const std::string& help,
                       int64_t min_num, Ref ref) {
  using C = Config;
  table.push_back(float_key(prefix + "min", help + " from", false, [ref](C& c) -> auto& { return ref(c).min; }));
  table.push_back(float_key(prefix + "max", help + " to", false, [ref](C& c) -> auto& { return ref(c).max; }));
  table.push_back(int_key(prefix + "num", help + ": points", false, [ref](C& c) -> auto& { return ref(c).num; },
                          in_range(static_cast<double>(min_num), 100000)));
}

const std::vector<KeyDef>& key_table() {
  using C = Config;
  static const std::vector<KeyDef> table = [] {
  std::vector<KeyDef> table = {
      string_key("name", "run name (a row of a report)", false, [](C& c) -> auto& { return c.name; }),
      string_key("preset", "preset the run started from", false,
                 [](C& c) -> auto& { return c.preset; }),
      uint_key("seed", "seed of every random generator", true, [](C& c) -> auto& { return c.seed; }),

      string_key("data.name", "dataset: " + joined(dataset_names()), true,
                 [](C& c) -> auto& { return c.data.name; }, one_of(dataset_names())),
      string_key("data.path", "folder with the dataset files (empty: standard location)", false,
                 [](C& c) -> auto& { return c.data.path; }),
      int_key("data.pixels", "image folders: side of the training and evaluation crops (0 = 224, tinyimagenet 64)",
              true, [](C& c) -> auto& { return c.data.pixels; }, in_range(0, 4096)),
      int_key("data.resize", "image folders: shorter side before cropping (0 = pixels * 256 / 224, tinyimagenet 64)",
              true, [](C& c) -> auto& { return c.data.resize; }, in_range(0, 8192)),
      int_key("data.size", "first N training images (0 = all)", true,
              [](C& c) -> auto& { return c.data.size; }, at_least(0)),
      int_key("data.test_size", "first N test images (0 = all, as the paper)", false,
              [](C& c) -> auto& { return c.data.test_size; }, at_least(0)),
      int_key("data.batch_size", "images per block (and per SGD step)", true,
              [](C& c) -> auto& { return c.data.batch_size; }, at_least(1)),
      enum_key("data.augmentations", "training augmentation: crop-flip, random-resized-crop or none", true,
               [](C& c) -> auto& { return c.data.augmentations; }),
      int_key("data.crop_padding", "zero padding of the random crop", true,
              [](C& c) -> auto& { return c.data.crop_padding; }, in_range(0, 64)),
      int_key("data.fixed_augmentations", "N fixed augmented copies of the training set (0 = off)",
              true, [](C& c) -> auto& { return c.data.fixed_augmentations; }, in_range(0, 1000)),

      string_key("model.name", "architecture (checked against the model zoo before a run starts)",
                 true, [](C& c) -> auto& { return c.model.name; }),
      int_key("model.width", "channels of the first stage (64 = paper)", true,
              [](C& c) -> auto& { return c.model.width; }, in_range(1, 4096)),
      bool_key("model.zero_init_residual", "zero the last BN of each residual branch", true,
               [](C& c) -> auto& { return c.model.zero_init_residual; }),
      string_key("model.path", "model.name=torchscript: the saved TorchScript module (docs/your-model.md)",
                 true, [](C& c) -> auto& { return c.model.path; }),

      int_key("hyp.steps", "full-batch steps, or epochs when stochastic", true,
              [](C& c) -> auto& { return c.hyp.steps; }, at_least(1)),
      bool_key("hyp.train_stochastic", "mini-batch SGD instead of full batch", true,
               [](C& c) -> auto& { return c.hyp.train_stochastic; }),
      bool_key("hyp.train_semi_stochastic", "SGD over one round of the fixed augmentations per epoch",
               true, [](C& c) -> auto& { return c.hyp.train_semi_stochastic; }),
      bool_key("hyp.shuffle", "new random data order every epoch (SGD) or step (full batch)", true,
               [](C& c) -> auto& { return c.hyp.shuffle; }),
      bool_key("hyp.sample_with_replacement", "SGD batches drawn with replacement", true,
               [](C& c) -> auto& { return c.hyp.sample_with_replacement; }),
      int_key("hyp.train_switch_stochastic", "after this step switch to SGD (0 = never)", true,
              [](C& c) -> auto& { return c.hyp.train_switch_stochastic; }, at_least(0)),
      float_key("hyp.optim.lr", "base learning rate", true,
                [](C& c) -> auto& { return c.hyp.optim.lr; }, at_least(0)),
      float_key("hyp.optim.momentum", "momentum", true,
                [](C& c) -> auto& { return c.hyp.optim.momentum; }, in_range(0, 1)),
      float_key("hyp.optim.weight_decay", "weight decay (added to the gradient)", true,
                [](C& c) -> auto& { return c.hyp.optim.weight_decay; }, at_least(0)),
      bool_key("hyp.optim.nesterov", "Nesterov momentum", true,
               [](C& c) -> auto& { return c.hyp.optim.nesterov; }),
      canonical_key("hyp.optim.name", "optimizer: Gradient Descent, Adam (AdamW), L-BFGS, FISTA, GD-AGC or Adaptive Gradient Descent",
                    true, [](C& c) -> auto& { return c.hyp.optim.name; },
                    optimizer_spellings()),
      float_key("hyp.optim.dampening", "momentum dampening (Gradient Descent, GD-AGC)", true,
                [](C& c) -> auto& { return c.hyp.optim.dampening; }, in_range(0, 1)),
      string_key("hyp.optim.betas", "Adam: beta1,beta2", true,
                 [](C& c) -> auto& { return c.hyp.optim.betas; }, number_list(2, in_range(0, 0.999999))),
      float_key("hyp.optim.eps", "Adam, L-BFGS, GD-AGC: eps (0 = the reference's: 1e-8, 1e-2, 1e-3)",
                true, [](C& c) -> auto& { return c.hyp.optim.eps; }, at_least(0)),
      bool_key("hyp.optim.amsgrad", "Adam: AMSGrad", true,
               [](C& c) -> auto& { return c.hyp.optim.amsgrad; }),
      int_key("hyp.optim.history_size", "L-BFGS: curvature pairs kept", true,
              [](C& c) -> auto& { return c.hyp.optim.history_size; }, in_range(1, 1000)),
      canonical_key("hyp.optim.line_search", "L-BFGS: Wolfe or none", true,
                    [](C& c) -> auto& { return c.hyp.optim.line_search; },
                    line_search_spellings()),
      bool_key("hyp.optim.damping", "L-BFGS: Powell damping of the curvature pairs", true,
               [](C& c) -> auto& { return c.hyp.optim.damping; }),
      float_key("hyp.optim.eta", "L-BFGS line search: step growth factor", true,
                [](C& c) -> auto& { return c.hyp.optim.eta; },
                [](double v) { return v > 1 ? std::string() : "must be > 1"; }),
      float_key("hyp.optim.c1", "L-BFGS line search: sufficient-decrease constant", true,
                [](C& c) -> auto& { return c.hyp.optim.c1; }, in_range(0, 1)),
      float_key("hyp.optim.c2", "L-BFGS line search: curvature constant", true,
                [](C& c) -> auto& { return c.hyp.optim.c2; }, in_range(0, 1)),
      int_key("hyp.optim.max_linesearches", "L-BFGS: line-search evaluations per step at most", true,
              [](C& c) -> auto& { return c.hyp.optim.max_linesearches; }, in_range(1, 1000)),
      string_key("hyp.optim.fista_mod", "FISTA: p,q,r of the momentum sequence", true,
                 [](C& c) -> auto& { return c.hyp.optim.fista_mod; }, number_list(3, at_least(0))),
      float_key("hyp.optim.clipping", "GD-AGC: unit-wise clipping ratio", true,
                [](C& c) -> auto& { return c.hyp.optim.clipping; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      int_key("hyp.optim.interval", "Adaptive Gradient Descent: steps of gradient norms remembered",
              true, [](C& c) -> auto& { return c.hyp.optim.interval; }, in_range(1, 1000000)),
      float_key("hyp.optim.norm_type", "Adaptive Gradient Descent: norm of the gradient (2 or inf)",
                true, [](C& c) -> auto& { return c.hyp.optim.norm_type; },
                [](double v) { return (v == 2.0 || std::isinf(v)) ? std::string() : "must be 2 or inf"; }),
      bool_key("hyp.only_linear_layers_weight_decay",
               "no weight decay on biases and gains (the reference's regular expression)", true,
               [](C& c) -> auto& { return c.hyp.only_linear_layers_weight_decay; }),
      canonical_key("hyp.optim_modification.name", "none, SAM, LARS or LARC around the optimizer", true,
                    [](C& c) -> auto& { return c.hyp.optim_modification.name; },
                    modification_spellings()),
      float_key("hyp.optim_modification.rho", "SAM: radius of the ascent step", true,
                [](C& c) -> auto& { return c.hyp.optim_modification.rho; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      float_key("hyp.optim_modification.trust_coefficient", "LARS/LARC: trust coefficient", true,
                [](C& c) -> auto& { return c.hyp.optim_modification.trust_coefficient; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      float_key("hyp.optim_modification.eps", "LARS/LARC: eps of the trust ratio", true,
                [](C& c) -> auto& { return c.hyp.optim_modification.eps; }, at_least(0)),
      int_key("hyp.warmup", "linear warm-up steps from lr 0", true,
              [](C& c) -> auto& { return c.hyp.warmup; }, at_least(0)),
      schedule_key("hyp.scheduler", "constant, cosine-decay, linear-decay or cosine-N"),
      float_key("hyp.grad_clip", "clip the full gradient to this norm (0 = off)", true,
                [](C& c) -> auto& { return c.hyp.grad_clip; }, at_least(0)),
      float_key("hyp.grad_clip_norm", "norm used for clipping: 2 or inf", true,
                [](C& c) -> auto& { return c.hyp.grad_clip_norm; },
                [](double v) {
                  return (v == 2.0 || std::isinf(v)) ? std::string() : "must be 2 or inf";
                }),
      float_key("hyp.batch_clip", "clip each block's gradient to this norm (0 = off)", true,
                [](C& c) -> auto& { return c.hyp.batch_clip; }, at_least(0)),
      float_key("hyp.grad_reg.block_strength", "gradient regularization per block (alpha)", true,
                [](C& c) -> auto& { return c.hyp.grad_reg.block_strength; }, at_least(0)),
      float_key("hyp.grad_reg.acc_strength", "gradient regularization of the full gradient", true,
                [](C& c) -> auto& { return c.hyp.grad_reg.acc_strength; }, at_least(0)),
      int_key("hyp.grad_reg.every_nth_block",
              "full batch: penalize one block in N, rotating with the step, its term scaled by N "
              "(the regularizer at 1/N of its cost; 1 = every block)",
              true, [](C& c) -> auto& { return c.hyp.grad_reg.every_nth_block; }, in_range(1, 1000000)),
      float_key("hyp.grad_reg.eps", "finite-difference step", true,
                [](C& c) -> auto& { return c.hyp.grad_reg.eps; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      enum_key("hyp.grad_reg.implementation",
               "forward-differences, central-differences or double-backprop", true,
               [](C& c) -> auto& { return c.hyp.grad_reg.implementation; }),
      int_key("hyp.sub_batch", "full batch: cut each block into max(n / sub_batch, 1) chunks (0 = whole)", true,
              [](C& c) -> auto& { return c.hyp.sub_batch; }, at_least(0)),
      float_key("hyp.grad_noise.additive", "additive Gaussian gradient noise scale", true,
                [](C& c) -> auto& { return c.hyp.grad_noise.additive; }, at_least(0)),
      float_key("hyp.grad_noise.multiplicative", "multiplicative Gaussian gradient noise scale",
                true, [](C& c) -> auto& { return c.hyp.grad_noise.multiplicative; }, at_least(0)),
      float_key("hyp.label_smoothing", "label smoothing", true,
                [](C& c) -> auto& { return c.hyp.label_smoothing; }, in_range(0, 1)),
      bool_key("hyp.evaluate_ema", "evaluate an exponential moving average of the weights", true,
               [](C& c) -> auto& { return c.hyp.evaluate_ema; }),
      float_key("hyp.eval_ema_momentum", "EMA momentum", true,
                [](C& c) -> auto& { return c.hyp.eval_ema_momentum; }, in_range(0, 1)),
      int_key("hyp.stop_at_full_training_accuracy", "stop after K steps at 100% train accuracy",
              true, [](C& c) -> auto& { return c.hyp.stop_at_full_training_accuracy; },
              at_least(0)),
      float_key("hyp.stop_at_val_accuracy",
                "stop at the first evaluation whose test accuracy reaches this % (0 = off); "
                "metrics.jsonl records the time to it",
                true, [](C& c) -> auto& { return c.hyp.stop_at_val_accuracy; }, in_range(0, 100)),

      int_key("impl.validate_every_nth_step", "evaluate on the test set every N steps", false,
              [](C& c) -> auto& { return c.impl.validate_every_nth_step; }, at_least(1)),
      int_key("impl.threads", "CPU threads (0 = all cores)", false,
              [](C& c) -> auto& { return c.impl.threads; }, in_range(0, 1024)),
      string_key("impl.device", "auto, cpu, cuda or cuda:N", false,
                 [](C& c) -> auto& { return c.impl.device; }, check_device),
      int_key("impl.eval_batch_size", "images per evaluation forward pass", false,
              [](C& c) -> auto& { return c.impl.eval_batch_size; }, at_least(1)),
      bool_key("impl.test_time_flips", "average logits over horizontal flips at evaluation", true,
               [](C& c) -> auto& { return c.impl.test_time_flips; }),
      enum_key("impl.mixed_precision", "none, bf16 (CUDA or CPU) or fp16 (CUDA) autocast", true,
               [](C& c) -> auto& { return c.impl.mixed_precision; }),
      enum_key("impl.accumulation_dtype", "dtype of the full-gradient accumulator", true,
               [](C& c) -> auto& { return c.impl.accumulation_dtype; }),
      enum_key("impl.channels_last",
               "channels-last memory format: auto (on for CUDA, and for bf16 on the CPU), true, false",
               false, [](C& c) -> auto& { return c.impl.channels_last; }),
      bool_key("impl.deterministic", "deterministic kernels (bit-reproducible on GPU)", false,
               [](C& c) -> auto& { return c.impl.deterministic; }),
      bool_key("impl.progress", "one-line console progress display", false,
               [](C& c) -> auto& { return c.impl.progress; }),
      int_key("impl.checkpoint.save_every_nth_step", "checkpoint every N steps (0 = only at end)",
              false, [](C& c) -> auto& { return c.impl.checkpoint_every; }, at_least(0)),
      int_key("impl.checkpoint.keep", "checkpoints kept", false,
              [](C& c) -> auto& { return c.impl.checkpoint_keep; }, at_least(1)),
      float_key("impl.dist_timeout_s", "seconds before a silent rank is declared dead", false,
                [](C& c) -> auto& { return c.impl.dist_timeout_s; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),

      int_key("analysis.every_nth_step",
              "record the top Hessian eigenvalue in metrics.jsonl every N steps (0 = off)", false,
              [](C& c) -> auto& { return c.analysis.every_nth_step; }, at_least(0)),
      bool_key("analysis.record_trace", "with every_nth_step: also Hutchinson's Hessian trace", false,
               [](C& c) -> auto& { return c.analysis.record_trace; }),
      int_key("analysis.data_size", "training images the analyses use, unaugmented (0 = data.size)",
              false, [](C& c) -> auto& { return c.analysis.data_size; }, at_least(0)),
      string_key("analysis.batchnorm", "BatchNorm in analyses: eval (running statistics, as the reference) or train (batch statistics)",
                 false, [](C& c) -> auto& { return c.analysis.batchnorm; }, one_of({"train", "eval"})),
      int_key("analysis.eigenvalues", "top Hessian eigenvalues computed by Lanczos", false,
              [](C& c) -> auto& { return c.analysis.eigenvalues; }, in_range(1, 100)),
      int_key("analysis.lanczos_iterations", "Lanczos iterations (Hessian-vector products) at most",
              false, [](C& c) -> auto& { return c.analysis.lanczos_iterations; }, in_range(1, 1000)),
      float_key("analysis.tolerance", "Lanczos stops when every Ritz residual is below tol * |eigenvalue|",
                false, [](C& c) -> auto& { return c.analysis.tolerance; }, in_range(0, 1)),
      int_key("analysis.trace_samples", "Hutchinson probe vectors for the Hessian trace", false,
              [](C& c) -> auto& { return c.analysis.trace_samples; }, in_range(1, 100000)),
      string_key("analysis.fd_eps", "comma-separated eps of the finite-difference error diagnostic",
                 false, [](C& c) -> auto& { return c.analysis.fd_eps; }, check_eps_list),
      float_key("analysis.sam_rho", "SAM sharpness radius rho", false,
                [](C& c) -> auto& { return c.analysis.sam_rho; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      float_key("analysis.flatness.threshold", "empirical flatness: the loss that ends the walk",
                false, [](C& c) -> auto& { return c.analysis.flatness_threshold; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      float_key("analysis.flatness.increment", "empirical flatness: step along the direction", false,
                [](C& c) -> auto& { return c.analysis.flatness_increment; },
                [](double v) { return v > 0 ? std::string() : "must be > 0"; }),
      int_key("analysis.flatness.max_steps", "empirical flatness: steps at most", false,
              [](C& c) -> auto& { return c.analysis.flatness_max_steps; }, in_range(1, 1000000)),
      string_key("analysis.landscape.norm", "direction normalization: filter, layer or weight", false,
                 [](C& c) -> auto& { return c.analysis.landscape.norm; },
                 one_of({"filter", "layer", "weight"})),
      bool_key("analysis.landscape.ignore_bias_bn", "directions are zero on biases and BatchNorm",
               false, [](C& c) -> auto& { return c.analysis.landscape.ignore_bias_bn; }),
      string_key("analysis.objective",
                 "what curvature measures: loss, or loss+wd (+ weight_decay/2 ||theta||^2)", false,
                 [](C& c) -> auto& { return c.analysis.objective; }, one_of({"loss", "loss+wd"})),
      bool_key("analysis.interpolation.recompute_batchnorm",
               "interpolation: BatchNorm statistics recomputed over the training blocks at each t",
               false, [](C& c) -> auto& { return c.analysis.interpolation_recompute_batchnorm; }),
      bool_key("analysis.landscape.full_loss",
               "landscape of the full loss: + weight decay and gradient-penalty terms", false,
               [](C& c) -> auto& { return c.analysis.landscape.full_loss; }),
  };
  append_range_keys(table, "analysis.landscape.x", "landscape: first direction", 1,
                    [](C& c) -> auto& { return c.analysis.landscape.x; });
  append_range_keys(table, "analysis.landscape.y", "landscape: second direction (num 0 = 1-D)", 0,
                    [](C& c) -> auto& { return c.analysis.landscape.y; });
  append_range_keys(table, "analysis.interpolation.", "interpolation between checkpoints: t", 2,
                    [](C& c) -> auto& { return c.analysis.interpolation; });
  return table;
  }();
  return table;
}

const KeyDef* find_key(const std::string& key) {
  for (const auto& def : key_table())
    if (def.info.key == key) return &def;
  return nullptr;
}

// A leaf's text; a sequence of scalars (the reference's `betas: [0.9, 0.999]`) becomes the
// comma-separated form the list keys take.
std::string scalar_text(const YAML::Node& node, const std::string& key, const std::string& origin) {
  if (node.IsNull()) return "";
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) {
    std::string text;
    bool scalars = true;
    for (const auto& item : node) {
      scalars = scalars && item.IsScalar();
      if (scalars) text += (text.empty() ? "" : ",") + item.Scalar();
    }
    if (scalars) return text;
  }
  throw UserError("config " + origin + ": key '" + key + "' must hold a single value or a list of values");
}

void flatten_yaml(const YAML::Node& node, const std::string& prefix,
                  std::vector<std::pair<std::string, YAML::Node>>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      flatten_yaml(kv.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out.emplace_back(prefix, node);
  }
}

}  // namespace

const std::vector<KeyInfo>& config_keys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> out;
    for (const auto& def : key_table()) out.push_back(def.info);
    return out;
  }();
  return keys;
}

bool key_affects_results(const std::string& key) {
  const KeyDef* def = find_key(key);
  return def != nullptr && def->info.affects_results;
}

std::string closest_key(const std::string& key) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& def : key_table()) {
    size_t d = edit_distance(key, def.info.key);
    // A key that ends the same way (hyp.lr for hyp.optim.lr) is a good guess too.
    const std::string& k = def.info.key;
    auto dot = key.rfind('.');
    std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    if (k.size() >= leaf.size() + 1 && k.compare(k.size() - leaf.size(), leaf.size(), leaf) == 0 &&
        k[k.size() - leaf.size() - 1] == '.')
      d = std::min(d, size_t(2));
    if (d < best_distance) best_distance = d, best = k;
  }
  return best_distance <= std::max<size_t>(3, key.size() / 3) ? best : "";
}

void set_key(Config& config, const std::string& key, const std::string& value,
             const std::string& origin) {
  std::string where = origin.empty() ? "" : " (" + origin + ")";
  const KeyDef* def = find_key(key);
  if (!def) {
    std::string hint = closest_key(key);
    throw UserError("unknown config key '" + printable(key) + "'" + where +
                    (hint.empty() ? "; `fullbatch keys` lists them"
                                  : "; did you mean '" + hint + "'?"));
  }
  try {
    def->set(config, value);
  } catch (const BadValue& bad) {
    throw UserError("config key '" + key + "'" + where + ": bad value '" + printable(value) +
                    "': " + bad.why);
  }
}

std::string get_key(const Config& config, const std::string& key) {
  const KeyDef* def = find_key(key);
  if (!def) throw UserError("unknown config key '" + key + "'");
  return def->get(config);
}

void apply_override(Config& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UserError("bad override '" + printable(assignment) +
                    "': expected key=value (e.g. hyp.steps=10)");
  std::string key = assignment.substr(0, eq);
  // Hydra-style "+key=value" and "++key=value" mean the same here.
  while (!key.empty() && key[0] == '+') key.erase(0, 1);
  set_key(config, key, assignment.substr(eq + 1), "command line");
}

void apply_yaml_text(Config& config, const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UserError("config " + origin + ": invalid YAML at line " +
                    std::to_string(e.mark.line + 1) + ": " + printable(e.msg));
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw UserError("config " + origin + ": expected a mapping of keys to values");
  std::vector<std::pair<std::string, YAML::Node>> leaves;
  try {
    flatten_yaml(root, "", leaves);
  } catch (const YAML::Exception& e) {
    throw UserError("config " + origin + ": bad key: " + printable(e.msg));
  }
  for (const auto& [key, node] : leaves) {
    set_key(config, key, scalar_text(node, key, origin), origin);
  }
}

void apply_yaml_file(Config& config, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw UserError("config file " + path + ": cannot be read: " + std::strerror(errno));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::fclose(f);
  apply_yaml_text(config, text, path);
}

std::vector<std::pair<std::string, std::string>> flatten(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& def : key_table()) out.emplace_back(def.info.key, def.get(config));
  return out;
}

std::vector<std::string> result_differences(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const auto& def : key_table())
    if (def.info.affects_results && def.get(a) != def.get(b)) out.push_back(def.info.key);
  return out;
}

std::string to_yaml(const Config& config) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& def : key_table()) {
    std::vector<std::string> parts;
    std::stringstream ss(def.info.key);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    // yaml-cpp nodes are handles: walking down by reassignment would rebind, so use a stack.
    std::vector<YAML::Node> path{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) path.push_back(path.back()[parts[i]]);
    std::string value = def.get(config);
    if (def.info.type == "string") {
      path.back()[parts.back()] = value;
    } else {
      path.back()[parts.back()] = YAML::Load(value);
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

void validate(const Config& c) {
  auto fail = [](const std::string& key, const std::string& why) {
    throw UserError("config key '" + key + "': " + why);
  };
  if (c.hyp.train_stochastic && c.hyp.grad_reg.every_nth_block > 1)
    fail("hyp.grad_reg.every_nth_block", "applies to full-batch training only");
  if (c.hyp.train_stochastic && c.hyp.grad_reg.acc_strength > 0)
    fail("hyp.grad_reg.acc_strength", "applies to full-batch training only (its direction is the full gradient)");
  if (c.hyp.train_stochastic && c.hyp.train_switch_stochastic > 0)
    fail("hyp.train_switch_stochastic", "needs hyp.train_stochastic=false (it switches to SGD)");
  if (c.hyp.train_semi_stochastic && c.data.fixed_augmentations == 0)
    fail("hyp.train_semi_stochastic", "needs data.fixed_augmentations > 0");
  if (c.data.fixed_augmentations > 0 && c.data.augmentations != Augmentation::kCropFlip)
    fail("data.fixed_augmentations", "needs data.augmentations=crop-flip");
  const bool folder = is_image_folder_dataset(c.data.name);
  if (c.data.augmentations == Augmentation::kRandomResizedCrop && !folder)
    fail("data.augmentations", "random-resized-crop needs an image-folder dataset (imagefolder, imagenet, tinyimagenet)");
  if (!folder && (c.data.pixels != 0 || c.data.resize != 0))
    fail(c.data.pixels != 0 ? "data.pixels" : "data.resize", "applies to image-folder datasets only");
  if (c.hyp.sample_with_replacement && !c.hyp.train_stochastic)
    fail("hyp.sample_with_replacement", "only applies to SGD (hyp.train_stochastic=true)");
}

}  // namespace fullbatch
