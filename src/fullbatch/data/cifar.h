#pragma once
// CIFAR-10 and CIFAR-100 in the official binary layout (plain or gzip-compressed).
#include <cstdint>
#include <string>

#include "fullbatch/data/dataset.h"
#include "fullbatch/data/raw_formats.h"

namespace fullbatch {

// Reads and validates one CIFAR binary file (plain or .gz). `expected_records` > 0 also demands
// that exact count (the official files all have a fixed count; tests pass small counts).
ImageSet read_cifar_file(const std::string& path, const CifarFormat& format,
                         int64_t expected_records);

// Loads a folder in the official layout: data_batch_1..5.bin + test_batch.bin (CIFAR-10) or
// train.bin + test.bin (CIFAR-100), each optionally gzipped, with names from batches.meta.txt /
// fine_label_names.txt when present.
Dataset load_cifar10(const std::string& dir, bool with_train = true);
Dataset load_cifar100(const std::string& dir, bool with_train = true);

}  // namespace fullbatch
