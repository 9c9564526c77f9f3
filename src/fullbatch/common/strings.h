#pragma once
// Small text helpers every layer uses: case folding for names the user may spell in any case,
// the edit distance behind "did you mean" hints, and the two ways user or file text is made safe
// for a message or for config.yaml. One copy each, so a name compares and a message reads the
// same wherever it is made.
#include <cstddef>
#include <string>

namespace fullbatch {

// ASCII lower case ("L-BFGS" -> "l-bfgs"); other bytes are kept.
std::string lower(std::string text);

// Levenshtein distance: insertions, deletions and substitutions of single bytes.
size_t edit_distance(const std::string& a, const std::string& b);

// Text from the user or from a file, fit for a one-line message: control characters become
// "\xNN" and text longer than `max_length` bytes is cut there and ends in "...".
std::string printable(const std::string& text, size_t max_length = 200);

// Whether `text` is well-formed UTF-8 without control characters, surrogates, BOM or
// non-characters: what config.yaml can carry and give back exactly (fuzz_config found a run name
// that YAML could not).
bool is_printable_utf8(const std::string& text);

}  // namespace fullbatch
