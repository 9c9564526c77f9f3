#include "fullbatch/data/file_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "fullbatch/common/error.h"

namespace fullbatch {
namespace {

namespace fs = std::filesystem;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// zlib's description of the stream's current error, or "" when there is none. Z_BUF_ERROR is how
// gzread reports a gzip stream that stops before its end.
std::string gz_error(gzFile f, const std::string& path) {
  int code = Z_OK;
  const char* raw = gzerror(f, &code);
  if (code == Z_OK || code == Z_STREAM_END) return "";
  if (code == Z_ERRNO) return std::string("read error: ") + std::strerror(errno);
  // zlib prefixes its message with "<path>: ", which our own prefix already says.
  std::string msg = raw ? raw : "?";
  if (msg.rfind(path + ": ", 0) == 0) msg.erase(0, path.size() + 2);
  return "gzip data is corrupt or truncated (zlib: " + msg + ")";
}

}  // namespace

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> plain_or_gz(const std::string& name) {
  return {name, name + ".gz"};
}

std::string find_data_file(const std::string& dir, const std::vector<std::string>& names) {
  std::error_code ec;
  for (const auto& name : names) {
    fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  std::string looked;
  for (const auto& name : names) looked += (looked.empty() ? "" : " or ") + name;
  throw UserError("data file missing in " + dir + ": looked for " + looked);
}

std::vector<uint8_t> read_data_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_data_file(path, "does not exist");
  if (!fs::is_regular_file(path, ec)) fail_data_file(path, "is not a regular file");
  const bool gz = ends_with(path, ".gz");
  // gzopen also reads plain files transparently, so one code path serves both kinds.
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) fail_data_file(path, std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(f.get(), 1 << 18);

  std::vector<uint8_t> bytes;
  // Plain files can be sized up front; for gzip the growth below is amortized.
  if (!gz) bytes.reserve(static_cast<size_t>(fs::file_size(path, ec)));
  constexpr size_t kChunk = 1 << 20;
  size_t used = 0;
  for (;;) {
    bytes.resize(used + kChunk);
    int got = gzread(f.get(), bytes.data() + used, static_cast<unsigned>(kChunk));
    if (got < 0) fail_data_file(path, gz_error(f.get(), path));
    used += static_cast<size_t>(got);
    if (got == 0) break;
  }
  bytes.resize(used);
  std::string err = gz_error(f.get(), path);
  if (!err.empty()) fail_data_file(path, err);
  // A ".gz" name holding plain bytes would otherwise be accepted silently.
  if (gz && gzdirect(f.get())) fail_data_file(path, "named .gz but is not gzip data");
  return bytes;
}

void fail_data_file(const std::string& path, const std::string& what) {
  throw UserError("data file " + path + ": " + what);
}

}  // namespace fullbatch
