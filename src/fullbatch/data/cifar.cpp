#include "fullbatch/data/cifar.h"

#include <filesystem>
#include <fstream>

#include "fullbatch/common/error.h"
#include "fullbatch/data/file_reader.h"

namespace fullbatch {
namespace {

constexpr int64_t kPixels = 3 * 32 * 32;

// Checks the record framing before anything is reinterpreted as a tensor.
int64_t count_records(const std::string& path, size_t bytes, const CifarFormat& format,
                      int64_t expected_records) {
  const auto rec = static_cast<size_t>(format.record_bytes());
  if (bytes == 0) throw UserError("data file " + path + ": is empty");
  if (bytes % rec != 0) {
    throw UserError("data file " + path + ": truncated: " + std::to_string(bytes) +
                    " bytes is not a multiple of the " + std::to_string(rec) + "-byte record");
  }
  const auto n = static_cast<int64_t>(bytes / rec);
  if (expected_records > 0 && n != expected_records) {
    throw UserError("data file " + path + ": has " + std::to_string(n) + " records, expected " +
                    std::to_string(expected_records));
  }
  return n;
}

// Labels are validated on the host so a bad byte is reported by record, not as a later crash.
void check_labels(const std::string& path, const torch::Tensor& labels, int64_t num_classes) {
  auto bad = (labels >= num_classes).nonzero();
  if (bad.size(0) == 0) return;
  int64_t i = bad[0][0].item<int64_t>();
  throw UserError("data file " + path + ": record " + std::to_string(i) + " has label " +
                  std::to_string(labels[i].item<int64_t>()) + ", expected 0.." +
                  std::to_string(num_classes - 1));
}

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

CifarFormat cifar10_format() {
  return {1, 0, 10};
}
CifarFormat cifar100_format() {
  return {2, 1, 100};
}

ImageSet read_cifar_file(const std::string& path, const CifarFormat& format,
                         int64_t expected_records) {
  std::vector<uint8_t> bytes = read_data_file(path);
  const int64_t n = count_records(path, bytes.size(), format, expected_records);
  auto records = torch::from_blob(bytes.data(), {n, format.record_bytes()}, torch::kUInt8);
  ImageSet set;
  // clone() copies out of `bytes`, which is freed on return.
  set.images = records.slice(1, format.label_bytes).reshape({n, 3, 32, 32}).clone();
  set.labels = records.select(1, format.label_index).to(torch::kLong);
  check_labels(path, set.labels, format.num_classes);
  return set;
}

Dataset load_cifar10(const std::string& dir) {
  check_dir(dir, "cifar10");
  const auto fmt = cifar10_format();
  std::vector<ImageSet> train;
  for (int b = 1; b <= 5; ++b) {
    auto path = find_data_file(dir, plain_or_gz("data_batch_" + std::to_string(b) + ".bin"));
    train.push_back(read_cifar_file(path, fmt, 10000));
  }
  Dataset d;
  d.name = "cifar10";
  d.num_classes = 10;
  d.train = concat(train);
  d.test = read_cifar_file(find_data_file(dir, plain_or_gz("test_batch.bin")), fmt, 10000);
  d.class_names = read_class_names(dir, "batches.meta.txt", 10);
  return d;
}

Dataset load_cifar100(const std::string& dir) {
  check_dir(dir, "cifar100");
  const auto fmt = cifar100_format();
  Dataset d;
  d.name = "cifar100";
  d.num_classes = 100;
  d.train = read_cifar_file(find_data_file(dir, plain_or_gz("train.bin")), fmt, 50000);
  d.test = read_cifar_file(find_data_file(dir, plain_or_gz("test.bin")), fmt, 10000);
  d.class_names = read_class_names(dir, "fine_label_names.txt", 100);
  return d;
}

}  // namespace fullbatch
