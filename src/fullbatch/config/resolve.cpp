#include "fullbatch/config/resolve.h"

#include "fullbatch/config/presets.h"

namespace fullbatch {

Config resolve_config(const std::string& preset, const std::vector<std::string>& config_files,
                      const std::vector<std::string>& overrides) {
  Config config;
  if (!preset.empty()) apply_preset(config, find_preset(preset));
  for (const auto& file : config_files) apply_yaml_file(config, file);
  for (const auto& o : overrides) apply_override(config, o);
  validate(config);
  return config;
}

}  // namespace fullbatch
