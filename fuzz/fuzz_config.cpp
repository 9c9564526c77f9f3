// The YAML config reader and key=value overrides (config/config).
#include <string>

#include "fullbatch/common/error.h"
#include "fullbatch/config/config.h"
#include "fuzz_target.h"

namespace fullbatch::fuzz {
namespace {

// A config that was accepted must survive config.yaml: writing it and reading it back gives the
// same values (a resumed run depends on this).
void check_round_trip(const Config& config) {
  Config again;
  apply_yaml_text(again, to_yaml(config), "round trip");
  if (flatten(again) != flatten(config)) __builtin_trap();
}

}  // namespace

int fuzz_config(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  Config config;
  try {
    if (data[0] & 1) {
      // One key=value override per line, as the command line passes them.
      size_t begin = 0;
      while (begin <= text.size()) {
        size_t end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        apply_override(config, text.substr(begin, end - begin));
        begin = end + 1;
      }
    } else {
      apply_yaml_text(config, text, "fuzz.yaml");
    }
    validate(config);
  } catch (const UserError& e) {
    one_line_or_trap(e);
    return 0;
  }
  check_round_trip(config);
  return 0;
}

}  // namespace fullbatch::fuzz

FULLBATCH_FUZZ_ENTRY(fullbatch::fuzz::fuzz_config)
