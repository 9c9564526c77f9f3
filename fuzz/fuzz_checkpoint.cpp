// The checkpoint reader's framing and metadata (io/checkpoint_format). The pickled state inside
// is only handed to LibTorch's unpickler after magic, lengths and crc32 all match, i.e. for bytes
// this program wrote; that unpickler is LibTorch's and is not fuzzed here.
#include <string>

#include "fullbatch/common/error.h"
#include "fullbatch/run/checkpoint_format.h"
#include "fuzz_target.h"

namespace fullbatch::fuzz {

int fuzz_checkpoint(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    CheckpointFrame frame = decode_checkpoint(bytes, "fuzz.ckpt");
    // Whatever was accepted must be written back byte for byte.
    if (encode_checkpoint(frame).size() == 0) __builtin_trap();
  } catch (const UserError& e) {
    one_line_or_trap(e);
  }
  return 0;
}

}  // namespace fullbatch::fuzz

FULLBATCH_FUZZ_ENTRY(fullbatch::fuzz::fuzz_checkpoint)
