#pragma once
// The vocabulary the key table (key_table.cpp) is written in, private to config/: a KeyDef (what a
// key is, how its text is parsed and checked, how its value is written back), one builder per kind
// of key (int, float, bool, string, one of a list of names, enum, schedule), and the reusable
// checks a numeric key names instead of spelling out (at_least, greater_than, in_range,
// two_or_inf). A value is checked once, when it is set, so an error always names its key.
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fullbatch/common/names.h"
#include "fullbatch/common/parse.h"
#include "fullbatch/common/strings.h"
#include "fullbatch/config/config.h"

namespace fullbatch::keys {

// A value is checked when it is set, so an error always names the key that carries it.
using Check = std::function<std::string(double)>;  // "" = fine, else what is wrong

// Thrown by a key's setter with what is wrong with the value; set_key turns it into a UserError
// that names the key, the value and where it came from.
struct BadValue {
  std::string why;
};

struct KeyDef {
  KeyInfo info;
  std::function<void(Config&, const std::string&)> set;  // throws BadValue
  std::function<std::string(const Config&)> get;
};

inline Check at_least(double lo) {
  return [lo](double v) { return v >= lo ? std::string() : "must be >= " + format_double(lo); };
}
inline Check in_range(double lo, double hi) {
  return [lo, hi](double v) {
    return (v >= lo && v <= hi)
               ? std::string()
               : "must be in [" + format_double(lo) + ", " + format_double(hi) + "]";
  };
}

inline Check greater_than(double lo) {
  return [lo](double v) { return v > lo ? std::string() : "must be > " + format_double(lo); };
}
// A norm's order: 2 or infinity (hyp.grad_clip_norm, hyp.optim.norm_type).
inline Check two_or_inf() {
  return [](double v) { return (v == 2.0 || std::isinf(v)) ? std::string() : "must be 2 or inf"; };
}

// Throws BadValue with what `check` says is wrong with `v`, if anything.
inline void require(const Check& check, double v) {
  if (!check) return;
  const std::string why = check(v);
  if (!why.empty()) throw BadValue{why};
}

inline bool parse_number(const std::string& text, int64_t& out) {
  return parse_int(text, out);
}
inline bool parse_number(const std::string& text, double& out) {
  return parse_float(text, out);
}
inline std::string format_number(int64_t v) {
  return std::to_string(v);
}
inline std::string format_number(double v) {
  return format_double(v);
}

// A numeric key: parsed strictly, checked, and formatted so that it parses back exactly.
template <class T, class Ref>
KeyDef number_key(std::string key, std::string help, bool affects, Ref ref, Check check) {
  constexpr bool kInt = std::is_integral_v<T>;
  return {{key, kInt ? "int" : "float", help, affects},
          [ref, check](Config& c, const std::string& text) {
            T v{};
            if (!parse_number(text, v))
              throw BadValue{kInt ? "expected an integer" : "expected a number"};
            require(check, static_cast<double>(v));
            ref(c) = v;
          },
          [ref](const Config& c) { return format_number(ref(c)); }};
}

template <class Ref>
KeyDef int_key(std::string key, std::string help, bool affects, Ref ref, Check check = {}) {
  return number_key<int64_t>(std::move(key), std::move(help), affects, ref, std::move(check));
}

template <class Ref>
KeyDef float_key(std::string key, std::string help, bool affects, Ref ref, Check check = {}) {
  return number_key<double>(std::move(key), std::move(help), affects, ref, std::move(check));
}

template <class Ref>
KeyDef uint_key(std::string key, std::string help, bool affects, Ref ref) {
  return {{key, "int", help, affects},
          [ref](Config& c, const std::string& text) {
            int64_t v;
            if (!parse_int(text, v) || v < 0) throw BadValue{"expected a non-negative integer"};
            ref(c) = static_cast<uint64_t>(v);
          },
          [ref](const Config& c) { return std::to_string(ref(c)); }};
}

template <class Ref>
KeyDef bool_key(std::string key, std::string help, bool affects, Ref ref) {
  return {{key, "bool", help, affects},
          [ref](Config& c, const std::string& text) {
            bool v;
            if (!parse_bool(text, v)) throw BadValue{"expected true or false"};
            ref(c) = v;
          },
          [ref](const Config& c) { return ref(c) ? "true" : "false"; }};
}

template <class Ref>
KeyDef string_key(std::string key, std::string help, bool affects, Ref ref,
                  std::function<std::string(const std::string&)> check = {}) {
  return {{key, "string", help, affects, /*written_as_text=*/true},
          [ref, check](Config& c, const std::string& text) {
            if (!is_printable_utf8(text))
              throw BadValue{"must be printable UTF-8 text (no control characters)"};
            if (check) {
              std::string why = check(text);
              if (!why.empty()) throw BadValue{why};
            }
            ref(c) = text;
          },
          [ref](const Config& c) { return ref(c); }};
}

// "a, b, c"
inline std::string joined(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

inline std::function<std::string(const std::string&)> one_of(std::vector<std::string> options) {
  return [options](const std::string& v) {
    if (std::find(options.begin(), options.end(), v) != options.end()) return std::string();
    return "must be one of: " + joined(options);
  };
}

// A key whose value is one of a few names, each with lower-case aliases (hyp.optim.name takes
// the reference's "L-BFGS" and "lbfgs" alike; common/names.h holds the lists, which the
// components read too); the value is stored in the canonical spelling, so config.yaml and resume
// compare one form.
template <class Ref>
KeyDef canonical_key(std::string key, std::string help, bool affects, Ref ref,
                     const std::vector<Spelling>& names) {
  return {{key, "string", help, affects, /*written_as_text=*/true},
          [ref, &names](Config& c, const std::string& text) {
            const Spelling* spelling = find_spelling(text, names);
            if (spelling == nullptr) throw BadValue{"must be one of: " + joined(names_of(names))};
            ref(c) = spelling->name;
          },
          [ref](const Config& c) { return ref(c); }};
}

// A key holding exactly N numbers, written comma-separated ("0.9,0.999"; a YAML sequence of
// scalars arrives in that form), each checked; stored typed, so no component parses it again
// (hyp.optim.betas, hyp.optim.fista_mod).
template <size_t N, class Ref>
KeyDef number_list_key(std::string key, std::string help, bool affects, Ref ref, Check check) {
  return {{key, "numbers", help, affects, /*written_as_text=*/true},
          [ref, check](Config& c, const std::string& text) {
            const std::string expected =
                "expected " + std::to_string(N) + " comma-separated numbers";
            std::array<double, N> values{};
            size_t count = 0;
            std::stringstream ss(text);
            for (std::string part; std::getline(ss, part, ',');) {
              double x;
              if (count == N || !parse_float(part, x)) throw BadValue{expected};
              values[count++] = x;
            }
            if (count != N) throw BadValue{expected};
            for (double x : values) {
              const std::string why = check ? check(x) : "";
              if (!why.empty()) throw BadValue{"each " + why};
            }
            ref(c) = values;
          },
          [ref](const Config& c) {
            std::string text;
            for (double x : ref(c)) text += (text.empty() ? "" : ",") + format_double(x);
            return text;
          }};
}

// A key whose value is one of an enum's spellings (config/enums.h).
template <class Ref>
KeyDef enum_key(std::string key, std::string help, bool affects, Ref ref) {
  using E = std::decay_t<decltype(ref(std::declval<Config&>()))>;
  return {{key, "string", help, affects, /*written_as_text=*/true},
          [ref](Config& c, const std::string& text) {
            E value;
            if (!parse_enum(text, value)) {
              std::string list;
              for (const auto& entry : enum_names(E{}))
                list += (list.empty() ? "" : ", ") + entry.second;
              throw BadValue{"must be one of: " + list};
            }
            ref(c) = value;
          },
          [ref](const Config& c) { return to_string(ref(c)); }};
}

inline KeyDef schedule_key(std::string key, std::string help) {
  return {{key, "string", help, true, /*written_as_text=*/true},
          [](Config& c, const std::string& text) {
            if (!parse_schedule(text, c.hyp.scheduler))
              throw BadValue{
                  "must be constant, cosine-decay, linear-decay or cosine-N with N > 0 (e.g. "
                  "cosine-4000)"};
          },
          [](const Config& c) { return to_string(c.hyp.scheduler); }};
}

// A comma-separated list of positive numbers (analysis.fd_eps).
inline std::string check_eps_list(const std::string& v) {
  if (parse_positive_list(v).empty()) return "must be a comma-separated list of numbers > 0";
  return "";
}

inline std::string check_device(const std::string& v) {
  static const std::regex pattern("auto|cpu|cuda|cuda:[0-9]+");
  return std::regex_match(v, pattern) ? "" : "must be auto, cpu, cuda or cuda:N";
}

// Every key, in the order config.yaml lists them (key_table.cpp).
const std::vector<KeyDef>& key_table();

}  // namespace fullbatch::keys
