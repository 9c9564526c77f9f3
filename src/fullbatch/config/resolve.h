#pragma once
#include <string>
#include <vector>

#include "fullbatch/config/config.h"

namespace fullbatch {

// Defaults, then the preset, then each YAML file, then key=value overrides: later wins.
Config resolve_config(const std::string& preset, const std::vector<std::string>& config_files,
                      const std::vector<std::string>& overrides);

// The default run directory of a config: runs/<name>_s<seed>.
std::string default_run_dir(const Config& config);

}  // namespace fullbatch
