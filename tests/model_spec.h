#pragma once
// A model spec in one call, for tests that build models by name.
#include <cstdint>
#include <string>

#include "fullbatch/models/model.h"

namespace fullbatch::testing {

inline ModelSpec spec_of(const std::string& name, int64_t width, int64_t in_channels = 3,
                         int64_t num_classes = 10) {
  ModelSpec spec;
  spec.name = name;
  spec.width = width;
  spec.in_channels = in_channels;
  spec.num_classes = num_classes;
  return spec;
}

}  // namespace fullbatch::testing
