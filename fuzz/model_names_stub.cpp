// The fuzz build has no LibTorch, so no model zoo: model.name is checked against this stand-in
// list (the real one is models/factory.cpp's). Only the config fuzzer links it.
#include "fullbatch/models/names.h"

namespace fullbatch {

std::vector<std::string> model_names() {
  return {"resnet18", "resnet20", "vgg11", "simplecnn"};
}

}  // namespace fullbatch
