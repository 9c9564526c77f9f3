#include "fullbatch/optim/optimizer.h"

#include <torch/torch.h>

#include <regex>
#include <sstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/names.h"
#include "fullbatch/optim/adamw.h"
#include "fullbatch/optim/adaptive_gd.h"
#include "fullbatch/optim/agc.h"
#include "fullbatch/optim/fista.h"
#include "fullbatch/optim/lars.h"
#include "fullbatch/optim/lbfgs.h"
#include "fullbatch/optim/sam.h"
#include "fullbatch/optim/sgd.h"

namespace fullbatch {
namespace {

const char* const kGd = "Gradient Descent";
const char* const kAdam = "Adam";
const char* const kLbfgs = "L-BFGS";
const char* const kFista = "FISTA";
const char* const kAgc = "GD-AGC";
const char* const kAdaptiveGd = "Adaptive Gradient Descent";

// The names and their aliases are common/names.h's, the lists hyp.optim.name and
// hyp.optim_modification.name accept, so a spelling works here exactly when it works there.
std::string canonical(const std::string& name, const std::vector<Spelling>& spellings,
                      const std::string& key) {
  if (const Spelling* s = find_spelling(name, spellings)) return s->name;
  std::ostringstream out;
  out << key << ": unknown name '" << name << "'; one of ";
  const std::vector<std::string> names = names_of(spellings);
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << "'" << names[i] << "'";
  throw UserError(out.str());
}

// The unset eps of Adam, L-BFGS and GD-AGC is the reference's default for each, which is the
// default of the optimizer's own options.
double eps_or(const OptimizerSettings& s, double reference_default) {
  expects(s.eps >= 0, "make_optimizer: eps must be >= 0 (0 = the optimizer's default)");
  return s.eps > 0 ? s.eps : reference_default;
}

// Each optimizer's options from the settings, by name: the keys it uses, nothing else.
SgdOptions sgd_options(const OptimizerSettings& s) {
  SgdOptions o;
  o.momentum = s.momentum, o.weight_decay = s.weight_decay;
  o.nesterov = s.nesterov, o.dampening = s.dampening;
  return o;
}

AdamWOptions adamw_options(const OptimizerSettings& s) {
  AdamWOptions o;
  o.betas = s.betas, o.eps = eps_or(s, AdamWOptions{}.eps);
  o.weight_decay = s.weight_decay, o.amsgrad = s.amsgrad;
  return o;
}

LbfgsOptions lbfgs_options(const OptimizerSettings& s) {
  LbfgsOptions o;
  o.history_size = s.history_size, o.eps = eps_or(s, LbfgsOptions{}.eps), o.damping = s.damping;
  o.eta = s.eta, o.c1 = s.c1, o.c2 = s.c2, o.max_linesearches = s.max_linesearches;
  const bool wolfe =
      canonical(s.line_search, line_search_spellings(), "hyp.optim.line_search") == "Wolfe";
  o.line_search = wolfe ? LineSearch::kWolfe : LineSearch::kNone;
  return o;
}

AgcOptions agc_options(const OptimizerSettings& s) {
  AgcOptions o;
  o.sgd = sgd_options(s), o.clipping = s.clipping, o.eps = eps_or(s, AgcOptions{}.eps);
  return o;
}

AdaptiveGdOptions adaptive_gd_options(const OptimizerSettings& s) {
  AdaptiveGdOptions o;
  o.sgd = sgd_options(s), o.interval = s.interval, o.norm_type = s.norm_type;
  return o;
}

LarsOptions lars_options(const OptimizerSettings::Modification& m, bool larc) {
  LarsOptions o;
  o.trust_coefficient = m.trust_coefficient, o.eps = m.eps, o.clip = larc;
  return o;
}

bool starts_with_any(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes)
    if (!prefix.empty() && name.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

std::unique_ptr<Optimizer> make_base(const std::string& name,
                                     const std::vector<torch::Tensor>& params,
                                     const std::vector<std::string>& names,
                                     const OptimizerSettings& s, std::vector<double> decays) {
  if (name == kGd) return std::make_unique<Sgd>(params, sgd_options(s), std::move(decays));
  if (name == kAdam) return std::make_unique<AdamW>(params, adamw_options(s), std::move(decays));
  if (name == kLbfgs) return std::make_unique<Lbfgs>(params, lbfgs_options(s), std::move(decays));
  if (name == kFista) {
    FistaOptions o;
    o.fista_mod = s.fista_mod;
    return std::make_unique<Fista>(params, o);
  }
  if (name == kAgc) {
    std::vector<bool> clipped;
    for (const std::string& n : names)
      clipped.push_back(!starts_with_any(n, s.agc_unclipped_prefixes));
    return std::make_unique<SgdAgc>(params, agc_options(s), std::move(clipped), std::move(decays));
  }
  return std::make_unique<AdaptiveGradientDescent>(params, adaptive_gd_options(s),
                                                   std::move(decays));
}

void check_state_shape(const std::string& key, const torch::Tensor& t, const torch::Tensor& like) {
  if (t.sizes().equals(like.sizes())) return;
  std::ostringstream out;
  out << "checkpoint: optimizer state '" << key << "' has shape " << t.sizes()
      << " where the model needs " << like.sizes();
  throw UserError(out.str());
}

const torch::Tensor& find_state(const OptimizerState& state, const std::string& key) {
  auto it = state.find(key);
  if (it == state.end()) throw UserError("checkpoint: optimizer state '" + key + "' is missing");
  if (it->second.numel() != 1)
    throw UserError("checkpoint: optimizer state '" + key + "' is not a single number");
  return it->second;
}

}  // namespace

std::vector<std::string> optimizer_names() {
  return names_of(optimizer_spellings());
}
std::vector<std::string> modification_names() {
  return names_of(modification_spellings());
}

std::string canonical_optimizer_name(const std::string& name) {
  return canonical(name, optimizer_spellings(), "hyp.optim.name");
}

std::string canonical_modification_name(const std::string& name) {
  return canonical(name, modification_spellings(), "hyp.optim_modification.name");
}

OptimizerSettings reference_optimizer_settings(const std::string& name) {
  // gd.yaml is OptimizerSettings' own defaults; each other yaml's optimizer keys are the defaults
  // of that optimizer's options (written once, beside it), its lr and weight decay are set here.
  OptimizerSettings s;
  s.name = canonical_optimizer_name(name);
  s.line_search = "none";  // gd.yaml's: the reference's line searches for GD are not ported
  if (s.name == kAdam) {   // adam.yaml: torch.optim.AdamW
    const AdamWOptions o;
    s.lr = 1e-3;
    s.betas = o.betas, s.eps = o.eps, s.weight_decay = o.weight_decay, s.amsgrad = o.amsgrad;
  } else if (s.name == kLbfgs) {  // lbfgs.yaml
    const LbfgsOptions o;
    s.lr = 1.0;
    s.weight_decay = 5e-4;
    s.history_size = o.history_size, s.eps = o.eps;
    s.line_search = o.line_search == LineSearch::kWolfe ? "Wolfe" : "none";
    s.damping = o.damping, s.eta = o.eta, s.c1 = o.c1, s.c2 = o.c2;
    s.max_linesearches = o.max_linesearches;
  } else if (s.name == kFista) {  // fista.yaml (no weight decay, no projection)
    s.lr = 0.1;
    s.weight_decay = 0;
    s.fista_mod = FistaOptions{}.fista_mod;
  } else if (s.name == kAgc) {  // gd_agc.yaml
    const AgcOptions o;
    s.lr = 1.6;
    s.weight_decay = 2e-5;
    s.clipping = o.clipping, s.eps = o.eps;
  } else if (s.name == kAdaptiveGd) {  // gd_clip.yaml
    const AdaptiveGdOptions o;
    s.interval = o.interval, s.norm_type = o.norm_type;
  }
  return s;
}

std::vector<double> parameter_weight_decays(const std::vector<std::string>& names,
                                            const OptimizerSettings& settings) {
  const std::string name = canonical_optimizer_name(settings.name);
  const double wd = name == kFista ? 0.0 : settings.weight_decay;
  std::vector<double> decays(names.size(), wd);
  if (!settings.only_linear_layers_weight_decay) return decays;
  // optimizers.py: a regex search (re.findall) over the parameter's name.
  static const std::regex general("(bias|gain)|skip_gain");
  static const std::regex agc("stem.*(bias|gain)|conv.*(bias|gain)|skip_gain");
  const std::regex& rule = name == kAgc ? agc : general;
  for (size_t i = 0; i < names.size(); ++i)
    if (std::regex_search(names[i], rule)) decays[i] = 0.0;
  return decays;
}

std::unique_ptr<Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                          std::vector<std::string> names,
                                          const OptimizerSettings& settings) {
  if (!names.empty() && names.size() != params.size())
    throw std::invalid_argument("make_optimizer: one name per parameter expected");
  names.resize(params.size());
  const std::string name = canonical_optimizer_name(settings.name);
  const std::string modification = canonical_modification_name(settings.modification.name);
  // The reference's SAM steps its base without a closure, which its L-BFGS cannot take; LARS
  // would scale the step's first gradient but none of the line search's.
  if (name == kLbfgs && modification != "none")
    throw UserError("hyp.optim_modification.name: " + modification +
                    " around L-BFGS is not supported (use it with another optimizer)");
  const std::vector<double> decays = parameter_weight_decays(names, settings);
  const bool lars = modification == "LARS" || modification == "LARC";
  // LARS takes the weight decay over from its base (lars.py zeroes the groups' weight_decay
  // for the base step and adds it to the gradient before the trust ratio).
  std::unique_ptr<Optimizer> base = make_base(
      name, params, names, settings, lars ? std::vector<double>(params.size(), 0.0) : decays);
  const OptimizerSettings::Modification& m = settings.modification;
  if (modification == "SAM") return std::make_unique<Sam>(std::move(base), params, m.rho);
  if (lars)
    return std::make_unique<Lars>(std::move(base), params, decays,
                                  lars_options(m, modification == "LARC"));
  return base;
}

double call_closure(const GradientClosure& closure) {
  if (!closure) throw std::invalid_argument("this optimizer needs a gradient closure");
  torch::AutoGradMode enable_grad(true);
  return closure();
}

std::vector<double> per_parameter(std::vector<double> values, size_t count, double fallback) {
  if (values.empty()) values.assign(count, fallback);
  if (values.size() != count) throw std::invalid_argument("one value per parameter expected");
  return values;
}

std::string state_key(const std::string& name, size_t i) {
  return name + "." + std::to_string(i);
}

torch::Tensor load_state_tensor(const OptimizerState& state, const std::string& key,
                                const torch::Tensor& like, bool required) {
  auto it = state.find(key);
  if (it == state.end()) {
    if (required) throw UserError("checkpoint: optimizer state '" + key + "' is missing");
    return torch::Tensor();
  }
  check_state_shape(key, it->second, like);
  return it->second.to(like.options()).clone();
}

int64_t load_state_int(const OptimizerState& state, const std::string& key) {
  return find_state(state, key).item<int64_t>();
}

double load_state_double(const OptimizerState& state, const std::string& key) {
  return find_state(state, key).item<double>();
}

torch::Tensor int_state(int64_t value) {
  return torch::scalar_tensor(value, torch::kInt64);
}
torch::Tensor double_state(double value) {
  return torch::scalar_tensor(value, torch::kFloat64);
}

}  // namespace fullbatch
