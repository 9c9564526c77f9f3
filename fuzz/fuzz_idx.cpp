// IDX (MNIST / Fashion-MNIST) header and label validation (data/raw_formats).
#include "fullbatch/common/error.h"
#include "fullbatch/data/raw_formats.h"
#include "fuzz_target.h"

namespace fullbatch::fuzz {

int fuzz_idx(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks images or labels; the rest is the file.
  try {
    if (data[0] & 1) {
      const int64_t n = check_idx_images("fuzz-images", data + 1, size - 1);
      // A success promises the pixel bytes that the loader will copy are all there.
      if (kIdxImagesOffset + static_cast<size_t>(n) * kIdxSide * kIdxSide != size - 1)
        __builtin_trap();
    } else {
      const int64_t n = check_idx_labels("fuzz-labels", data + 1, size - 1, 10);
      if (kIdxLabelsOffset + static_cast<size_t>(n) != size - 1) __builtin_trap();
    }
  } catch (const UserError& e) {
    one_line_or_trap(e);
  }
  return 0;
}

}  // namespace fullbatch::fuzz

FULLBATCH_FUZZ_ENTRY(fullbatch::fuzz::fuzz_idx)
