// Number formatting and XML escaping for the report (declared in format.h); numbers go through
// snprintf so a cell's text is fixed by its format string alone.
#include "fullbatch/report/format.h"

#include <cmath>
#include <cstdio>

namespace fullbatch::detail {

namespace {

const char* xml_entity(char c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '"':
      return "&quot;";
    case '\'':
      return "&#39;";
    default:
      return nullptr;
  }
}

}  // namespace

std::string printf_double(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string format_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  return printf_double(("%." + std::to_string(decimals) + "f").c_str(), v);
}

std::string format_compact(double v, int max_decimals) {
  if (!std::isfinite(v)) return "n/a";
  std::string s = format_fixed(v, max_decimals);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string format_count(double v) {
  if (!std::isfinite(v)) return "n/a";
  const double whole = std::round(v);
  std::string digits = format_fixed(std::fabs(whole), 0);
  for (std::size_t pos = digits.size(); pos > 3; pos -= 3) digits.insert(pos - 3, ",");
  return (whole < 0 ? "-" : "") + digits;
}

std::string escape_xml(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const char* entity = xml_entity(c);
    if (entity)
      out += entity;
    else
      out += c;
  }
  return out;
}

}  // namespace fullbatch::detail
