#include "fullbatch/common/names.h"

#include <algorithm>

#include "fullbatch/common/strings.h"

namespace fullbatch {

const std::vector<Spelling>& optimizer_spellings() {
  static const std::vector<Spelling> spellings = {
      {"Gradient Descent", {"gd", "sgd", "gradient-descent", "gradient_descent"}},
      {"Adam", {"adamw"}},
      {"L-BFGS", {"lbfgs"}},
      {"FISTA", {}},
      {"GD-AGC", {"agc", "gd_agc"}},
      {"Adaptive Gradient Descent", {"adaptive-gd", "adaptive_gd", "agd"}},
  };
  return spellings;
}

const std::vector<Spelling>& modification_spellings() {
  static const std::vector<Spelling> spellings = {
      {"none", {""}}, {"SAM", {}}, {"LARS", {}}, {"LARC", {}}};
  return spellings;
}

const std::vector<Spelling>& line_search_spellings() {
  static const std::vector<Spelling> spellings = {{"Wolfe", {}}, {"none", {""}}};
  return spellings;
}

const Spelling* find_spelling(const std::string& text, const std::vector<Spelling>& spellings) {
  const std::string l = lower(text);
  for (const Spelling& s : spellings) {
    if (l == lower(s.name) || std::find(s.aliases.begin(), s.aliases.end(), l) != s.aliases.end())
      return &s;
  }
  return nullptr;
}

std::vector<std::string> names_of(const std::vector<Spelling>& spellings) {
  std::vector<std::string> names;
  for (const Spelling& s : spellings) names.push_back(s.name);
  return names;
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {
      "cifar10", "cifar100", "mnist", "fashion-mnist", "imagefolder", "imagenet", "tinyimagenet"};
  return names;
}

bool is_image_folder_dataset(const std::string& name) {
  return name == "imagefolder" || name == "imagenet" || name == "tinyimagenet";
}

}  // namespace fullbatch
