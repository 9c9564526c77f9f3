#pragma once
// Validation of the raw CIFAR and IDX byte layouts, free of LibTorch so the fuzz targets can
// build it alone. The loaders in cifar.cpp / idx.cpp run these checks before any byte becomes a
// tensor; every failure is a one-line UserError naming `path`.
#include <cstddef>
#include <cstdint>
#include <string>

namespace fullbatch {

// The official CIFAR binary record: `label_bytes` label bytes (CIFAR-100: coarse then fine), then
// 3072 pixel bytes (R, G, B planes of 32x32, row-major), i.e. already CHW.
struct CifarFormat {
  int64_t label_bytes = 1;   // 1 for CIFAR-10, 2 for CIFAR-100
  int64_t label_index = 0;   // which label byte is used: 0 for CIFAR-10, 1 (fine) for CIFAR-100
  int64_t num_classes = 10;  // labels must be below this
  int64_t record_bytes() const { return label_bytes + 3 * 32 * 32; }
};

CifarFormat cifar10_format();
CifarFormat cifar100_format();

// Checks framing (non-empty, whole records, `expected_records` when > 0) and that every used
// label is below num_classes. Returns the record count.
int64_t check_cifar_bytes(const std::string& path, const uint8_t* data, size_t size,
                          const CifarFormat& format, int64_t expected_records);

constexpr int64_t kIdxSide = 28;
constexpr size_t kIdxImagesOffset = 16;  // pixels start after magic, count, rows, cols
constexpr size_t kIdxLabelsOffset = 8;   // labels start after magic, count

// IDX images: magic 2051, count, 28, 28, then count*28*28 bytes. Returns the count.
int64_t check_idx_images(const std::string& path, const uint8_t* data, size_t size);
// IDX labels: magic 2049, count, then count bytes each below num_classes. Returns the count.
int64_t check_idx_labels(const std::string& path, const uint8_t* data, size_t size,
                         int64_t num_classes);

}  // namespace fullbatch
