#include "fullbatch/config/presets.h"

#include "fullbatch/common/error.h"

namespace fullbatch {
namespace {

using Overrides = std::vector<std::pair<std::string, std::string>>;

Overrides join(Overrides base, const Overrides& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

// The ladder of Tables 1-2, each row built from the previous one as the paper describes it.
const Overrides kSgd = {{"hyp.train_stochastic", "true"}, {"hyp.shuffle", "true"},
                        {"hyp.steps", "300"},             {"hyp.optim.lr", "0.1"},
                        {"hyp.warmup", "5"},              {"hyp.scheduler", "cosine-decay"},
                        {"data.batch_size", "128"}};
const Overrides kFb1 = {{"hyp.train_stochastic", "false"}, {"hyp.shuffle", "false"},
                        {"hyp.steps", "300"},              {"hyp.optim.lr", "0.1"},
                        {"hyp.warmup", "5"},               {"hyp.scheduler", "cosine-decay"},
                        {"data.batch_size", "128"}};
const Overrides kFb2 = join(kFb1, {{"hyp.steps", "3000"},
                                   {"hyp.optim.lr", "0.4"},
                                   {"hyp.warmup", "400"},
                                   {"hyp.scheduler", "cosine-4000"}});
const Overrides kFbClip = join(kFb2, {{"hyp.grad_clip", "0.25"}});
const Overrides kGradReg = join(kFbClip, {{"hyp.optim.lr", "0.8"},
                                          {"hyp.grad_reg.block_strength", "0.5"},
                                          {"hyp.grad_reg.eps", "0.01"},
                                          {"hyp.grad_reg.implementation", "forward-differences"}});
const Overrides kGradRegStrong = join(kGradReg, {{"hyp.sub_batch", "32"}});
const Overrides kGradRegShuffle = join(kGradRegStrong, {{"hyp.shuffle", "true"}});

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"base_sgd", "Table 1/2",
       "SGD baseline: batch 128, Nesterov 0.9, wd 5e-4, lr 0.1, 300 epochs, cosine, 5 warm-up "
       "epochs, shuffled",
       "95.70 (±0.05)", kSgd},
      {"fb1", "Table 2", "full batch with the SGD hyper-parameters: 300 steps", "75.42 (±0.13)",
       kFb1},
      {"fb2", "Table 2", "full batch trained longer: 3000 steps, warm-up 400 to lr 0.4, cosine-4000",
       "87.36 (±1.23)", kFb2},
      {"fbclip", "Table 2", "fb2 + full-gradient clipping to l2 norm 0.25", "93.75 (±0.13)",
       kFbClip},
      {"gradreg", "Table 2",
       "fbclip + gradient regularization (strength 0.5, forward differences), lr 0.8",
       "> 95 (comparable to SGD)", kGradReg},
      {"gradreg_strong", "Table 2", "gradreg with regularizer sub-blocks of 32 (strong reg.)",
       "comparable to SGD", kGradRegStrong},
      {"gradreg_shuffle", "Table 2",
       "\"FB in practice\": gradreg_strong with the data order shuffled every step",
       "comparable to SGD", kGradRegShuffle},
  };
  return all;
}

const Preset& find_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string list;
  for (const auto& p : presets()) list += (list.empty() ? "" : ", ") + p.name;
  throw UserError("unknown preset '" + name + "'; known presets: " + list);
}

void apply_preset(Config& config, const Preset& preset) {
  for (const auto& [key, value] : preset.overrides)
    set_key(config, key, value, "preset " + preset.name);
  config.preset = preset.name;
  if (config.name == Config{}.name) config.name = preset.name;
}

}  // namespace fullbatch
