// Loading run directories (declared in runs.h), plus what the loader needs and nothing else
// does: YAML-to-JSON conversion of the config, and metrics parsing that survives bare NaN and a
// truncated last line.
#include "fullbatch/report/runs.h"

#include "fullbatch/report/statistics.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "fullbatch/common/error.h"
#include "fullbatch/run/run_dir.h"

namespace fullbatch {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {


// A run file's name without its folder, as messages name it next to the run directory.
std::string base_name(const std::string& path) {
  return fs::path(path).filename().string();
}

// yaml-cpp keeps every scalar as text; guess the type the way a YAML 1.2 reader would, so that
// `train_stochastic: true` becomes a JSON boolean. Quoted scalars (tag "!") stay strings.
json yaml_scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "~" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0' && errno == 0) return i;
  end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end && *end == '\0' && std::isfinite(d)) return d;
  return s;
}

json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : n) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : n) arr.push_back(yaml_to_json(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      return yaml_scalar_to_json(n);
    default:
      return nullptr;
  }
}

// Length of a bare -Infinity, Infinity or NaN token starting at `i`; 0 when there is none.
std::size_t nonfinite_token_at(const std::string& line, std::size_t i) {
  for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
    std::size_t n = std::char_traits<char>::length(tok);
    if (line.compare(i, n, tok) == 0) return n;
  }
  return 0;
}

// Python's json module and some C++ writers emit bare NaN/Infinity for a diverged loss; strict
// JSON rejects them and the whole line would be lost, so read them as null (missing) instead.
std::string nonfinite_to_null(const std::string& line) {
  std::string out;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < line.size())
        out += line[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    const std::size_t n = nonfinite_token_at(line, i);
    if (n == 0) {
      out += c;
    } else {
      out += "null";
      i += n - 1;
    }
  }
  return out;
}

json read_summary(const RunDir& run) {
  const std::string name = base_name(run.summary_file());
  std::ifstream in(run.summary_file());
  if (!in) throw UserError("run directory " + run.path() + " has no " + name);
  json summary;
  try {
    in >> summary;
  } catch (const json::exception&) {
    throw UserError("run directory " + run.path() + ": " + name + " is not valid JSON");
  }
  if (!summary.is_object())
    throw UserError("run directory " + run.path() + ": " + name + " is not a JSON object");
  return summary;
}

// Parsed object lines of the metrics log; unparsable lines become warnings.
void read_metrics(const RunDir& run, RunRecord& rec) {
  const std::string path = run.metrics_file();
  std::ifstream in(path);
  if (!in) throw UserError("run directory " + run.path() + " has no " + base_name(path));
  std::string line;
  std::size_t line_no = 0, nonblank = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++nonblank;
    json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) m = json::parse(nonfinite_to_null(line), nullptr, false);
    if (m.is_object())
      rec.metrics.push_back(std::move(m));
    else
      rec.warnings.push_back(path + ":" + std::to_string(line_no) +
                             ": skipped unparsable metrics line");
  }
  // A few bad lines are a crash artefact; a file with no good line at all is not a metrics log.
  if (nonblank > 0 && rec.metrics.empty())
    throw UserError("run directory " + run.path() + ": " + base_name(path) +
                    " has no parsable line");
}

// The config as JSON; an unreadable one is a warning, because only the SGD/full-batch kind
// depends on it.
void read_config(const RunDir& run, RunRecord& rec) {
  const std::string path = run.config_file();
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  try {
    rec.config = yaml_to_json(YAML::LoadFile(path));
  } catch (const YAML::Exception& e) {
    rec.warnings.push_back(path + ": unreadable config (" + e.what() +
                           "); SGD/full-batch kind unknown");
    rec.config = nullptr;
  }
}

bool has_summary(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(RunDir(dir.string()).summary_file(), ec);
}

std::vector<fs::path> sorted_subdirs(const fs::path& parent) {
  std::vector<fs::path> subs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec))
    if (e.is_directory(ec)) subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  return subs;
}

// Run directories among the children of `parent`, else among a child's children.
std::vector<fs::path> runs_below(const fs::path& parent) {
  std::vector<fs::path> found;
  for (const fs::path& child : sorted_subdirs(parent)) {
    if (has_summary(child)) {
      found.push_back(child);
      continue;
    }
    for (const fs::path& grandchild : sorted_subdirs(child))
      if (has_summary(grandchild)) found.push_back(grandchild);
  }
  return found;
}

// Appends `dir` unless the same folder (by canonical path) is already listed.
void add_unique(const fs::path& dir, std::set<std::string>& seen, std::vector<std::string>& out) {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(dir, ec);
  std::string key = ec ? dir.lexically_normal().string() : canon.string();
  if (seen.insert(key).second) out.push_back(dir.string());
}

}  // namespace

namespace detail {

double json_number(const json& obj, const char* key) {
  if (!obj.is_object()) return kNaN;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

std::string json_text(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

}  // namespace detail

std::string RunRecord::name() const {
  std::string n = detail::json_text(summary, "name");
  if (n.empty()) n = detail::json_text(config, "name");
  if (n.empty()) n = fs::path(dir).filename().string();
  return n;
}

std::optional<bool> RunRecord::stochastic() const {
  if (!config.is_object()) return std::nullopt;
  auto hyp = config.find("hyp");
  if (hyp == config.end() || !hyp->is_object()) return std::nullopt;
  auto it = hyp->find("train_stochastic");
  if (it == hyp->end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

RunRecord load_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UserError("run directory " + dir + " does not exist");
  const RunDir run(dir);
  RunRecord rec;
  rec.dir = dir;
  rec.summary = read_summary(run);
  read_metrics(run, rec);
  read_config(run, rec);
  return rec;
}

std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& arg : paths) {
    const fs::path p(arg);
    std::error_code ec;
    if (!fs::is_directory(p, ec)) throw UserError("run directory " + arg + " does not exist");
    if (has_summary(p)) {
      add_unique(p, seen, out);
      continue;
    }
    const std::vector<fs::path> found = runs_below(p);
    if (found.empty())
      throw UserError("run directory " + arg + " has no " + base_name(RunDir(arg).summary_file()) +
                      " and no run directories (with one) below it");
    for (const fs::path& run : found) add_unique(run, seen, out);
  }
  return out;
}

}  // namespace fullbatch
