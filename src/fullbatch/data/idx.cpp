#include "fullbatch/data/idx.h"

#include <filesystem>

#include "fullbatch/common/error.h"
#include "fullbatch/data/file_reader.h"

namespace fullbatch {
namespace {

constexpr uint32_t kImageMagic = 2051;  // 0x00000803: unsigned bytes, 3 dims
constexpr uint32_t kLabelMagic = 2049;  // 0x00000801: unsigned bytes, 1 dim
constexpr int64_t kSide = 28;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UserError("data file " + path + ": " + what);
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}

// Validates the header and returns the item count; `dims` counts the sizes after the magic.
int64_t read_header(const std::string& path, const std::vector<uint8_t>& bytes, uint32_t magic,
                    int dims) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header) {
    fail(path, "too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  }
  const uint32_t got = be32(bytes, 0);
  if (got != magic) {
    fail(path, "bad IDX magic " + std::to_string(got) + ", expected " + std::to_string(magic));
  }
  return be32(bytes, 4);
}

void check_size(const std::string& path, size_t actual, size_t expected) {
  if (actual != expected) {
    fail(path, "has " + std::to_string(actual) + " bytes, expected " + std::to_string(expected) +
                   " from its header");
  }
}

torch::Tensor read_images(const std::string& path) {
  auto bytes = read_data_file(path);
  const int64_t n = read_header(path, bytes, kImageMagic, 3);
  const uint32_t rows = be32(bytes, 8), cols = be32(bytes, 12);
  if (rows != kSide || cols != kSide) {
    fail(path,
         "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
  }
  check_size(path, bytes.size(), 16 + static_cast<size_t>(n) * kSide * kSide);
  return torch::from_blob(bytes.data() + 16, {n, 1, kSide, kSide}, torch::kUInt8).clone();
}

torch::Tensor read_labels(const std::string& path, int64_t num_classes) {
  auto bytes = read_data_file(path);
  const int64_t n = read_header(path, bytes, kLabelMagic, 1);
  check_size(path, bytes.size(), 8 + static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (bytes[8 + i] >= num_classes) {
      fail(path, "item " + std::to_string(i) + " has label " + std::to_string(bytes[8 + i]) +
                     ", expected 0.." + std::to_string(num_classes - 1));
    }
  }
  return torch::from_blob(bytes.data() + 8, {n}, torch::kUInt8).to(torch::kLong);
}

std::vector<std::string> class_names_for(const std::string& name) {
  if (name == "fashion-mnist") {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  std::vector<std::string> digits;
  for (int i = 0; i < 10; ++i) digits.push_back(std::to_string(i));
  return digits;
}

}  // namespace

ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int64_t num_classes) {
  ImageSet set;
  set.images = read_images(images_path);
  set.labels = read_labels(labels_path, num_classes);
  if (set.images.size(0) != set.labels.size(0)) {
    fail(images_path, "has " + std::to_string(set.images.size(0)) + " images but " + labels_path +
                          " has " + std::to_string(set.labels.size(0)) + " labels");
  }
  return set;
}

Dataset load_mnist_like(const std::string& name, const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw UserError("data.path: " + dir + " is not a directory (expected the " + name +
                    " IDX files)");
  }
  auto find = [&](const std::string& file) { return find_data_file(dir, plain_or_gz(file)); };
  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.train = read_idx_pair(find("train-images-idx3-ubyte"), find("train-labels-idx1-ubyte"));
  d.test = read_idx_pair(find("t10k-images-idx3-ubyte"), find("t10k-labels-idx1-ubyte"));
  d.class_names = class_names_for(name);
  return d;
}

}  // namespace fullbatch
