#pragma once
// The paper's experiments by name (`fullbatch presets`): each preset is a list of key
// overrides on top of the defaults, with the table and the accuracy the paper reports for it.
#include <string>
#include <utility>
#include <vector>

#include "fullbatch/config/config.h"

namespace fullbatch {

// A named experiment of the paper: overrides on top of the defaults, and what the paper reports.
struct Preset {
  std::string name;
  std::string table;        // where the paper reports it, e.g. "Table 2"
  std::string description;  // what it changes
  std::string paper_accuracy;  // the paper's val. accuracy (ResNet-18, CIFAR-10 unless said)
  std::vector<std::pair<std::string, std::string>> overrides;
};

const std::vector<Preset>& presets();

// Throws UserError naming the preset (and the closest one) when unknown.
const Preset& find_preset(const std::string& name);

// Applies the preset's overrides and records its name in config.preset (and config.name when
// the name is still the default).
void apply_preset(Config& config, const Preset& preset);

}  // namespace fullbatch
