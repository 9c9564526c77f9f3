#include "fullbatch/data/raw_formats.h"

#include "fullbatch/common/error.h"
#include "fullbatch/data/file_reader.h"

namespace fullbatch {
namespace {

constexpr uint32_t kImageMagic = 2051;  // 0x00000803: unsigned bytes, 3 dims
constexpr uint32_t kLabelMagic = 2049;  // 0x00000801: unsigned bytes, 1 dim

uint32_t be32(const uint8_t* b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}

// Validates the header and returns the item count; `dims` counts the sizes after the magic.
int64_t read_header(const std::string& path, const uint8_t* data, size_t size, uint32_t magic,
                    int dims) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (size < header) fail_data_file(path, "too short for an IDX header (" + std::to_string(size) + " bytes)");
  const uint32_t got = be32(data, 0);
  if (got != magic)
    fail_data_file(path, "bad IDX magic " + std::to_string(got) + ", expected " + std::to_string(magic));
  return be32(data, 4);
}

void check_size(const std::string& path, size_t actual, size_t expected) {
  if (actual != expected) {
    fail_data_file(path, "has " + std::to_string(actual) + " bytes, expected " + std::to_string(expected) +
                   " from its header");
  }
}

}  // namespace

CifarFormat cifar10_format() {
  return {1, 0, 10};
}
CifarFormat cifar100_format() {
  return {2, 1, 100};
}

int64_t check_cifar_bytes(const std::string& path, const uint8_t* data, size_t size,
                          const CifarFormat& format, int64_t expected_records) {
  const auto rec = static_cast<size_t>(format.record_bytes());
  if (size == 0) fail_data_file(path, "is empty");
  if (size % rec != 0) {
    fail_data_file(path, "truncated: " + std::to_string(size) + " bytes is not a multiple of the " +
                   std::to_string(rec) + "-byte record");
  }
  const auto n = static_cast<int64_t>(size / rec);
  if (expected_records > 0 && n != expected_records) {
    fail_data_file(path,
         "has " + std::to_string(n) + " records, expected " + std::to_string(expected_records));
  }
  // Labels are checked here so a bad byte is reported by record, not as a later crash.
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = data[static_cast<size_t>(i) * rec + format.label_index];
    if (label >= format.num_classes) {
      fail_data_file(path, "record " + std::to_string(i) + " has label " + std::to_string(label) +
                     ", expected 0.." + std::to_string(format.num_classes - 1));
    }
  }
  return n;
}

int64_t check_idx_images(const std::string& path, const uint8_t* data, size_t size) {
  const int64_t n = read_header(path, data, size, kImageMagic, 3);
  const uint32_t rows = be32(data, 8), cols = be32(data, 12);
  if (rows != kIdxSide || cols != kIdxSide) {
    fail_data_file(path,
         "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
  }
  check_size(path, size, kIdxImagesOffset + static_cast<size_t>(n) * kIdxSide * kIdxSide);
  return n;
}

int64_t check_idx_labels(const std::string& path, const uint8_t* data, size_t size,
                         int64_t num_classes) {
  const int64_t n = read_header(path, data, size, kLabelMagic, 1);
  check_size(path, size, kIdxLabelsOffset + static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (data[kIdxLabelsOffset + i] >= num_classes) {
      fail_data_file(path, "item " + std::to_string(i) + " has label " +
                     std::to_string(data[kIdxLabelsOffset + i]) + ", expected 0.." +
                     std::to_string(num_classes - 1));
    }
  }
  return n;
}

}  // namespace fullbatch
