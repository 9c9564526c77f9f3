#pragma once
// MNIST and Fashion-MNIST in the IDX layout (plain or gzip-compressed).
#include <string>

#include "fullbatch/data/dataset.h"

namespace fullbatch {

// Reads an MNIST-style pair of IDX files (images: magic 2051, [N, 28, 28] bytes; labels: magic
// 2049, [N] bytes; big-endian headers; plain or .gz) and validates magic, dims, exact byte count,
// that both hold N items, and that every label is below `num_classes`.
ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int64_t num_classes = 10);

// Loads train-/t10k- images/labels from `dir` (MNIST and Fashion-MNIST share the layout).
Dataset load_mnist_like(const std::string& name, const std::string& dir,
                        bool with_train = true);

}  // namespace fullbatch
