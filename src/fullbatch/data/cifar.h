#pragma once
#include <cstdint>
#include <string>

#include "fullbatch/data/dataset.h"

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

// Reads and validates one CIFAR binary file (plain or .gz). `expected_records` > 0 also demands
// that exact count (the official files all have a fixed count; tests pass small counts).
ImageSet read_cifar_file(const std::string& path, const CifarFormat& format,
                         int64_t expected_records);

// Loads a folder in the official layout: data_batch_1..5.bin + test_batch.bin (CIFAR-10) or
// train.bin + test.bin (CIFAR-100), each optionally gzipped, with names from batches.meta.txt /
// fine_label_names.txt when present.
Dataset load_cifar10(const std::string& dir);
Dataset load_cifar100(const std::string& dir);

}  // namespace fullbatch
