#include "fullbatch/data/idx.h"

#include <filesystem>

#include "fullbatch/common/error.h"
#include "fullbatch/data/file_reader.h"
#include "fullbatch/data/raw_formats.h"

namespace fullbatch {
namespace {

torch::Tensor read_images(const std::string& path) {
  auto bytes = read_data_file(path);
  const int64_t n = check_idx_images(path, bytes.data(), bytes.size());
  return torch::from_blob(bytes.data() + kIdxImagesOffset, {n, 1, kIdxSide, kIdxSide},
                          torch::kUInt8)
      .clone();
}

torch::Tensor read_labels(const std::string& path, int64_t num_classes) {
  auto bytes = read_data_file(path);
  const int64_t n = check_idx_labels(path, bytes.data(), bytes.size(), num_classes);
  return torch::from_blob(bytes.data() + kIdxLabelsOffset, {n}, torch::kUInt8).to(torch::kLong);
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
    throw UserError("data file " + images_path + ": has " + std::to_string(set.images.size(0)) +
                    " images but " + labels_path + " has " + std::to_string(set.labels.size(0)) +
                    " labels");
  }
  return set;
}

Dataset load_mnist_like(const std::string& name, const std::string& dir, bool with_train) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw UserError("data.path: " + dir + " is not a directory (expected the " + name +
                    " IDX files)");
  }
  auto find = [&](const std::string& file) { return find_data_file(dir, plain_or_gz(file)); };
  Dataset d;
  d.name = name;
  d.num_classes = 10;
  if (with_train)
    d.train = read_idx_pair(find("train-images-idx3-ubyte"), find("train-labels-idx1-ubyte"));
  d.test = read_idx_pair(find("t10k-images-idx3-ubyte"), find("t10k-labels-idx1-ubyte"));
  d.class_names = class_names_for(name);
  return d;
}

}  // namespace fullbatch
