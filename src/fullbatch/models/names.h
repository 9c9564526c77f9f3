#pragma once
// model_names() (also declared in model.h, defined in factory.cpp), declared here without
// LibTorch so that the config table, and the config fuzzer built from it, can check model.name.
#include <string>
#include <vector>

namespace fullbatch {

std::vector<std::string> model_names();

}  // namespace fullbatch
