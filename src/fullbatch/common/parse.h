#pragma once
// Numbers and booleans from user text (command line, YAML, bench arguments), strictly: the whole
// text must be the value, so "3x" or "" is an error, never a silent 3 or 0. Each returns false
// on bad text; the caller names the key in its one-line message.
#include <cstdint>
#include <string>
#include <vector>

namespace fullbatch {

bool parse_int(const std::string& text, int64_t& out);
// Also "inf", ".inf" and "Infinity"; NaN is refused.
bool parse_float(const std::string& text, double& out);
// true/false, 1/0, yes/no, on/off, any case.
bool parse_bool(const std::string& text, bool& out);

// "1e-1,1e-2": every item a finite number > 0; empty when any item is not.
std::vector<double> parse_positive_list(const std::string& text);

// The shortest decimal text that parses back to exactly `v` ("inf" for infinity).
std::string format_double(double v);

}  // namespace fullbatch
