// CIFAR-10/100 binary record validation (data/raw_formats).
#include "fullbatch/common/error.h"
#include "fullbatch/data/raw_formats.h"
#include "fuzz_target.h"

namespace fullbatch::fuzz {

int fuzz_cifar(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the format and whether an exact record count is demanded.
  const CifarFormat format = (data[0] & 1) ? cifar100_format() : cifar10_format();
  const int64_t expected = (data[0] & 2) ? 1 : 0;
  try {
    const int64_t n = check_cifar_bytes("fuzz.bin", data + 1, size - 1, format, expected);
    if (n * format.record_bytes() != static_cast<int64_t>(size - 1)) __builtin_trap();
  } catch (const UserError& e) {
    one_line_or_trap(e);
  }
  return 0;
}

}  // namespace fullbatch::fuzz

FULLBATCH_FUZZ_ENTRY(fullbatch::fuzz::fuzz_cifar)
