#pragma once
// Reading data files whole, gzip or not, with every failure a one-line error naming the file.
#include <cstdint>
#include <string>
#include <vector>

namespace fullbatch {

// Reads a whole data file into memory. A name ending in ".gz" is decompressed with zlib (and must
// really be gzip data); any other name is read as is. Every failure (missing, not a regular file,
// unreadable, corrupt or truncated gzip) is a one-line UserError that names the file.
std::vector<uint8_t> read_data_file(const std::string& path);

// The first of `dir`/name for name in `names` that exists as a regular file. Throws a UserError
// listing every name looked for when none does.
std::string find_data_file(const std::string& dir, const std::vector<std::string>& names);

// `name` then `name`.gz: a data file may be stored plain or gzip-compressed; plain wins if both.
std::vector<std::string> plain_or_gz(const std::string& name);

bool ends_with(const std::string& s, const std::string& suffix);

// Throws the UserError "data file PATH: WHAT", the form every reader's message takes.
[[noreturn]] void fail_data_file(const std::string& path, const std::string& what);

}  // namespace fullbatch
