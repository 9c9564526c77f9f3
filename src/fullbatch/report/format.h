#pragma once
// Number formatting and escaping shared by the report's writers, its verdict sentence and its SVG
// plots, so a value prints the same in a table cell, a sentence and a tick label, and no cell ever
// says "nan". Internal to report/; durations are common/clock.h's format_duration.
#include <string>

namespace fullbatch::detail {

// snprintf with one double, e.g. printf_double("%.6g", v).
std::string printf_double(const char* fmt, double v);

// `decimals` fixed decimals; "n/a" when not finite.
std::string format_fixed(double v, int decimals);

// At most `max_decimals`, trailing zeros removed, so 3000.0 prints as "3000" and 0.25 as "0.25";
// "n/a" when not finite.
std::string format_compact(double v, int max_decimals);

// Rounded to a whole number with thousands separators, e.g. "1,536,000"; "n/a" when not finite.
std::string format_count(double v);

// & < > " ' as entities, for SVG and HTML text and attribute values.
std::string escape_xml(const std::string& s);

}  // namespace fullbatch::detail
