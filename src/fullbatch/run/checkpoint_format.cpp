#include "fullbatch/run/checkpoint_format.h"

#include <zlib.h>

#include "fullbatch/common/error.h"

namespace fullbatch {
namespace {

constexpr char kMagic[8] = {'F', 'B', 'C', 'K', 'P', 'T', '\r', '\n'};
constexpr size_t kHeader = 8 + 4 + 8;

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(const std::string& in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

uint32_t crc_of(const std::string& bytes, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large files in pieces.
  for (size_t done = 0; done < n;) {
    const size_t piece = std::min<size_t>(n - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(piece));
    done += piece;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

std::string encode_checkpoint(const CheckpointFrame& frame) {
  const std::string meta = nlohmann::json{
      {"format", "fullbatch-checkpoint"},
      {"step", frame.step},
      {"finished", frame.finished},
      {"config", frame.config_yaml},
      {"metrics",
       frame.metrics_jsonl}}.dump();
  std::string out(kMagic, sizeof(kMagic));
  out.reserve(kHeader + meta.size() + 8 + frame.payload.size() + 4);
  put_le(out, kCheckpointVersion, 4);
  put_le(out, meta.size(), 8);
  out += meta;
  put_le(out, frame.payload.size(), 8);
  out += frame.payload;
  put_le(out, crc_of(out, out.size()), 4);
  return out;
}

CheckpointFrame decode_checkpoint(const std::string& bytes, const std::string& origin) {
  auto fail = [&](const std::string& why) { throw UserError("checkpoint " + origin + ": " + why); };
  const size_t size = bytes.size();
  if (size < sizeof(kMagic) || bytes.compare(0, sizeof(kMagic), kMagic, sizeof(kMagic)) != 0)
    fail("not a fullbatch checkpoint (bad magic)");
  if (size < kHeader + 8 + 4) fail("truncated (" + std::to_string(size) + " bytes)");
  const uint64_t version = get_le(bytes, 8, 4);
  if (version != kCheckpointVersion)
    fail("format version " + std::to_string(version) + ", this build reads version " +
         std::to_string(kCheckpointVersion));
  // Lengths are checked against what is left before adding them, so no sum can overflow.
  const uint64_t meta_len = get_le(bytes, 12, 8);
  if (meta_len > size - kHeader - 8 - 4) fail("truncated (metadata runs past the end)");
  const size_t payload_at = kHeader + meta_len + 8;
  const uint64_t payload_len = get_le(bytes, kHeader + meta_len, 8);
  if (payload_len > size - payload_at - 4) fail("truncated (state runs past the end)");
  if (payload_at + payload_len + 4 != size)
    fail(std::to_string(size - payload_at - payload_len - 4) + " unexpected bytes after the end");
  const uint32_t stored = static_cast<uint32_t>(get_le(bytes, size - 4, 4));
  if (stored != crc_of(bytes, size - 4)) fail("checksum mismatch (the file is corrupt)");

  const nlohmann::json m =
      nlohmann::json::parse(bytes.begin() + kHeader, bytes.begin() + kHeader + meta_len, nullptr,
                            /*allow_exceptions=*/false);
  if (!m.is_object()) fail("metadata is not a JSON object");
  auto format = m.find("format");
  if (format == m.end() || *format != "fullbatch-checkpoint") fail("metadata has no format tag");
  auto step = m.find("step");
  if (step == m.end() || !step->is_number_integer() || step->get<int64_t>() < 0)
    fail("metadata 'step' is missing or not a non-negative integer");
  auto finished = m.find("finished");
  if (finished == m.end() || !finished->is_boolean())
    fail("metadata 'finished' is missing or not true/false");
  for (const char* key : {"config", "metrics"})
    if (!m.contains(key) || !m[key].is_string())
      fail(std::string("metadata '") + key + "' is missing or not text");

  CheckpointFrame frame;
  frame.step = step->get<int64_t>();
  frame.finished = finished->get<bool>();
  frame.config_yaml = m["config"].get<std::string>();
  frame.metrics_jsonl = m["metrics"].get<std::string>();
  frame.payload = bytes.substr(payload_at, payload_len);
  return frame;
}

}  // namespace fullbatch
