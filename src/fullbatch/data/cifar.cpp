#include "fullbatch/data/cifar.h"

#include <filesystem>
#include <fstream>

#include "fullbatch/common/error.h"
#include "fullbatch/data/file_reader.h"

namespace fullbatch {
namespace {

// One name per non-empty line; falls back to "0".."n-1" when the file is absent.
std::vector<std::string> read_class_names(const std::string& dir, const std::string& file,
                                          int64_t n) {
  std::vector<std::string> names;
  const auto path = (std::filesystem::path(dir) / file).string();
  std::ifstream in(path);
  if (in) {
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    if (static_cast<int64_t>(names.size()) != n) {
      throw UserError("data file " + path + ": has " + std::to_string(names.size()) +
                      " class names, expected " + std::to_string(n));
    }
    return names;
  }
  for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

ImageSet concat(const std::vector<ImageSet>& parts) {
  if (parts.size() == 1) return parts[0];
  std::vector<torch::Tensor> images, labels;
  for (const auto& p : parts) {
    images.push_back(p.images);
    labels.push_back(p.labels);
  }
  return {torch::cat(images), torch::cat(labels)};
}

void check_dir(const std::string& dir, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw UserError("data.path: " + dir + " is not a directory (expected the " + name +
                    " binary files)");
  }
}

}  // namespace

ImageSet read_cifar_file(const std::string& path, const CifarFormat& format,
                         int64_t expected_records) {
  std::vector<uint8_t> bytes = read_data_file(path);
  const int64_t n = check_cifar_bytes(path, bytes.data(), bytes.size(), format, expected_records);
  auto records = torch::from_blob(bytes.data(), {n, format.record_bytes()}, torch::kUInt8);
  ImageSet set;
  // clone() copies out of `bytes`, which is freed on return.
  set.images = records.slice(1, format.label_bytes).reshape({n, 3, 32, 32}).clone();
  set.labels = records.select(1, format.label_index).to(torch::kLong);
  return set;
}

Dataset load_cifar10(const std::string& dir, bool with_train) {
  check_dir(dir, "cifar10");
  const auto fmt = cifar10_format();
  std::vector<ImageSet> train;
  for (int b = 1; b <= 5 && with_train; ++b) {
    auto path = find_data_file(dir, plain_or_gz("data_batch_" + std::to_string(b) + ".bin"));
    train.push_back(read_cifar_file(path, fmt, 10000));
  }
  Dataset d;
  d.name = "cifar10";
  d.num_classes = 10;
  if (with_train) d.train = concat(train);
  d.test = read_cifar_file(find_data_file(dir, plain_or_gz("test_batch.bin")), fmt, 10000);
  d.class_names = read_class_names(dir, "batches.meta.txt", 10);
  return d;
}

Dataset load_cifar100(const std::string& dir, bool with_train) {
  check_dir(dir, "cifar100");
  const auto fmt = cifar100_format();
  Dataset d;
  d.name = "cifar100";
  d.num_classes = 100;
  if (with_train) d.train = read_cifar_file(find_data_file(dir, plain_or_gz("train.bin")), fmt, 50000);
  d.test = read_cifar_file(find_data_file(dir, plain_or_gz("test.bin")), fmt, 10000);
  d.class_names = read_class_names(dir, "fine_label_names.txt", 100);
  return d;
}

}  // namespace fullbatch
