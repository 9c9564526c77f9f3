#include "fullbatch/common/parse.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "fullbatch/common/strings.h"

namespace fullbatch {

std::vector<double> parse_positive_list(const std::string& text) {
  std::vector<double> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    double v = 0;
    if (!parse_float(text.substr(begin, end - begin), v) || !(v > 0) || std::isinf(v)) return {};
    values.push_back(v);
    begin = end + 1;
  }
  return values;
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

bool parse_int(const std::string& text, int64_t& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_float(const std::string& text, double& out) {
  if (text.empty()) return false;
  if (text == "inf" || text == ".inf" || text == "Infinity") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || std::isnan(v)) return false;
  out = v;
  return true;
}

bool parse_bool(const std::string& text, bool& out) {
  const std::string t = lower(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return out = true, true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return out = false, true;
  return false;
}

}  // namespace fullbatch
