#pragma once
// How a run's config is assembled from its sources, in a fixed order of precedence.
#include <string>
#include <vector>

#include "fullbatch/config/config.h"

namespace fullbatch {

// Defaults, then the preset, then each YAML file, then key=value overrides: later wins.
Config resolve_config(const std::string& preset, const std::vector<std::string>& config_files,
                      const std::vector<std::string>& overrides);


}  // namespace fullbatch
