#pragma once
// The checkpoint file's framing, free of LibTorch so the fuzz targets can build it alone.
//
//   offset  size  field
//   0       8     magic "FBCKPT\r\n" (a text-mode or line-ending mangled copy fails at once)
//   8       4     format version, little-endian uint32 (kCheckpointVersion)
//   12      8     metadata length M, little-endian uint64
//   20      M     metadata: one JSON object (step, config YAML text, metrics so far, ...)
//   20+M    8     payload length P, little-endian uint64
//   28+M    P     payload: the pickled state dict (io/weights pickle_state_dict)
//   28+M+P  4     zlib crc32 of every byte before it, little-endian uint32
//
// The reader checks magic, version, both lengths against the file size and the crc before it
// parses anything, so a truncated or bit-flipped file is rejected with a one-line UserError
// before the (unforgiving) unpickler sees a byte.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace fullbatch {

constexpr uint32_t kCheckpointVersion = 1;

// A checkpoint with its state still pickled.
struct CheckpointFrame {
  int64_t step = 0;
  bool finished = false;
  std::string config_yaml;
  std::string metrics_jsonl;
  std::string payload;  // the pickled state dict
};

std::string encode_checkpoint(const CheckpointFrame& frame);

// Validates and splits a checkpoint file's bytes, metadata fields included; `origin` (the file's
// name) starts every error.
CheckpointFrame decode_checkpoint(const std::string& bytes, const std::string& origin);

}  // namespace fullbatch
