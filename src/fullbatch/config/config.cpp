#include "fullbatch/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include "fullbatch/common/error.h"
#include "fullbatch/common/names.h"
#include "fullbatch/common/strings.h"
#include "fullbatch/config/key_def.h"

namespace fullbatch {
namespace {

using keys::BadValue;
using keys::key_table;
using keys::KeyDef;

const KeyDef* find_key(const std::string& key) {
  for (const auto& def : key_table())
    if (def.info.key == key) return &def;
  return nullptr;
}

// A leaf's text; a sequence of scalars (the reference's `betas: [0.9, 0.999]`) becomes the
// comma-separated form the list keys take.
std::string scalar_text(const YAML::Node& node, const std::string& key, const std::string& origin) {
  if (node.IsNull()) return "";
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) {
    std::string text;
    bool scalars = true;
    for (const auto& item : node) {
      scalars = scalars && item.IsScalar();
      if (scalars) text += (text.empty() ? "" : ",") + item.Scalar();
    }
    if (scalars) return text;
  }
  throw UserError("config " + origin + ": key '" + key +
                  "' must hold a single value or a list of values");
}

void flatten_yaml(const YAML::Node& node, const std::string& prefix,
                  std::vector<std::pair<std::string, YAML::Node>>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      flatten_yaml(kv.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out.emplace_back(prefix, node);
  }
}

}  // namespace

const std::vector<KeyInfo>& config_keys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> out;
    for (const auto& def : key_table()) out.push_back(def.info);
    return out;
  }();
  return keys;
}

bool key_affects_results(const std::string& key) {
  const KeyDef* def = find_key(key);
  return def != nullptr && def->info.affects_results;
}

std::string closest_key(const std::string& key) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& def : key_table()) {
    size_t d = edit_distance(key, def.info.key);
    // A key that ends the same way (hyp.lr for hyp.optim.lr) is a good guess too.
    const std::string& k = def.info.key;
    auto dot = key.rfind('.');
    std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    if (k.size() >= leaf.size() + 1 && k.compare(k.size() - leaf.size(), leaf.size(), leaf) == 0 &&
        k[k.size() - leaf.size() - 1] == '.')
      d = std::min(d, size_t(2));
    if (d < best_distance) best_distance = d, best = k;
  }
  return best_distance <= std::max<size_t>(3, key.size() / 3) ? best : "";
}

void set_key(Config& config, const std::string& key, const std::string& value,
             const std::string& origin) {
  std::string where = origin.empty() ? "" : " (" + origin + ")";
  const KeyDef* def = find_key(key);
  if (!def) {
    std::string hint = closest_key(key);
    throw UserError(
        "unknown config key '" + printable(key) + "'" + where +
        (hint.empty() ? "; `fullbatch keys` lists them" : "; did you mean '" + hint + "'?"));
  }
  try {
    def->set(config, value);
  } catch (const BadValue& bad) {
    throw UserError("config key '" + key + "'" + where + ": bad value '" + printable(value) +
                    "': " + bad.why);
  }
}

std::string get_key(const Config& config, const std::string& key) {
  const KeyDef* def = find_key(key);
  if (!def) throw UserError("unknown config key '" + key + "'");
  return def->get(config);
}

void apply_override(Config& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UserError("bad override '" + printable(assignment) +
                    "': expected key=value (e.g. hyp.steps=10)");
  std::string key = assignment.substr(0, eq);
  // Hydra-style "+key=value" and "++key=value" mean the same here.
  while (!key.empty() && key[0] == '+') key.erase(0, 1);
  set_key(config, key, assignment.substr(eq + 1), "command line");
}

void apply_yaml_text(Config& config, const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UserError("config " + origin + ": invalid YAML at line " +
                    std::to_string(e.mark.line + 1) + ": " + printable(e.msg));
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw UserError("config " + origin + ": expected a mapping of keys to values");
  std::vector<std::pair<std::string, YAML::Node>> leaves;
  try {
    flatten_yaml(root, "", leaves);
  } catch (const YAML::Exception& e) {
    throw UserError("config " + origin + ": bad key: " + printable(e.msg));
  }
  for (const auto& [key, node] : leaves) {
    set_key(config, key, scalar_text(node, key, origin), origin);
  }
}

void apply_yaml_file(Config& config, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw UserError("config file " + path + ": cannot be read: " + std::strerror(errno));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::fclose(f);
  apply_yaml_text(config, text, path);
}

std::vector<std::pair<std::string, std::string>> flatten(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& def : key_table()) out.emplace_back(def.info.key, def.get(config));
  return out;
}

std::vector<std::string> result_differences(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const auto& def : key_table())
    if (def.info.affects_results && def.get(a) != def.get(b)) out.push_back(def.info.key);
  return out;
}

std::string to_yaml(const Config& config) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& def : key_table()) {
    std::vector<std::string> parts;
    std::stringstream ss(def.info.key);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    // yaml-cpp nodes are handles: walking down by reassignment would rebind, so use a stack.
    std::vector<YAML::Node> path{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) path.push_back(path.back()[parts[i]]);
    std::string value = def.get(config);
    if (def.info.written_as_text) {
      path.back()[parts.back()] = value;
    } else {
      path.back()[parts.back()] = YAML::Load(value);
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

void validate(const Config& c) {
  auto fail = [](const std::string& key, const std::string& why) {
    throw UserError("config key '" + key + "': " + why);
  };
  if (c.hyp.train_stochastic && c.hyp.grad_reg.every_nth_block > 1)
    fail("hyp.grad_reg.every_nth_block", "applies to full-batch training only");
  if (c.hyp.train_stochastic && c.hyp.grad_reg.acc_strength > 0)
    fail("hyp.grad_reg.acc_strength",
         "applies to full-batch training only (its direction is the full gradient)");
  if (c.hyp.train_stochastic && c.hyp.train_switch_stochastic > 0)
    fail("hyp.train_switch_stochastic", "needs hyp.train_stochastic=false (it switches to SGD)");
  if (c.hyp.train_semi_stochastic && c.data.fixed_augmentations == 0)
    fail("hyp.train_semi_stochastic", "needs data.fixed_augmentations > 0");
  if (c.data.fixed_augmentations > 0 && c.data.augmentations != Augmentation::kCropFlip)
    fail("data.fixed_augmentations", "needs data.augmentations=crop-flip");
  const bool folder = is_image_folder_dataset(c.data.name);
  if (c.data.augmentations == Augmentation::kRandomResizedCrop && !folder)
    fail("data.augmentations",
         "random-resized-crop needs an image-folder dataset (imagefolder, imagenet, tinyimagenet)");
  if (!folder && (c.data.pixels != 0 || c.data.resize != 0))
    fail(c.data.pixels != 0 ? "data.pixels" : "data.resize",
         "applies to image-folder datasets only");
  if (c.hyp.sample_with_replacement && !c.hyp.train_stochastic)
    fail("hyp.sample_with_replacement", "only applies to SGD (hyp.train_stochastic=true)");
}

}  // namespace fullbatch
