#include "fullbatch/data/dataset.h"

#include <stdexcept>

#include "fullbatch/common/error.h"
#include "fullbatch/data/cifar.h"
#include "fullbatch/data/idx.h"
#include "fullbatch/data/image_folder.h"

namespace fullbatch {
namespace {

// The binary datasets are used at their own size: data.pixels may only repeat it.
void check_fixed_size(const DataSpec& spec) {
  const int64_t side = spec.name == "cifar10" || spec.name == "cifar100" ? 32 : 28;
  if (spec.pixels != 0 && spec.pixels != side) {
    throw UserError("data.pixels: " + spec.name + " images are " + std::to_string(side) + "x" +
                    std::to_string(side) + " and used as they are; use 0 or " +
                    std::to_string(side) + ", got " + std::to_string(spec.pixels));
  }
  if (spec.resize != 0) {
    throw UserError("data.resize: only image folders (imagefolder, imagenet) are resized; " +
                    spec.name + " takes 0, got " + std::to_string(spec.resize));
  }
}

std::string joined_names() {
  std::string s;
  for (const auto& n : dataset_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Keeps the first n images of a split in file order; the clone frees the rest.
void take_first(ImageSet& set, int64_t n, const std::string& key, const std::string& what,
                const std::string& dataset) {
  if (n < 0) throw UserError(key + ": must be >= 0 (0 = all), got " + std::to_string(n));
  if (n == 0) return;
  if (n == set.size()) return;  // nothing to drop (image folders decode only the first n)
  if (n > set.size()) {
    throw UserError(key + ": " + std::to_string(n) + " is more than the " +
                    std::to_string(set.size()) + " " + what + " images of " + dataset);
  }
  set.images = set.images.narrow(0, 0, n).clone();
  set.labels = set.labels.narrow(0, 0, n).clone();
}

}  // namespace

// CIFAR-10/100 and TinyImageNet: the reference's config/data/*.yaml, every digit it gives (its own
// float32 statistics of each training set). Rounding them to 7 digits moves a normalized pixel by
// up to 1e-6, which the finite-difference regularizer amplifies through eps / ||v|| to 3-4% of the
// update away from the reference after a single step (tests/parity/README.md).
ChannelStats normalization_stats(const std::string& name) {
  if (name == "cifar10") {
    return {{0.4914672374725342, 0.4822617471218109, 0.4467701315879822},
            {0.24703224003314972, 0.24348513782024384, 0.26158785820007324}};
  }
  if (name == "cifar100") {
    return {{0.5071598291397095, 0.4866936206817627, 0.44120192527770996},
            {0.2673342823982239, 0.2564384639263153, 0.2761504650115967}};
  }
  if (name == "mnist") return {{0.1307}, {0.3081}};
  if (name == "imagefolder" || name == "imagenet") {
    return {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};  // ImageNet's, as the reference's
  }
  if (name == "tinyimagenet") {
    return {{0.4789886474609375, 0.4457630515098572, 0.3944724500179291},
            {0.27698642015457153, 0.2690644860267639, 0.2820819020271301}};
  }
  return {{0.2860}, {0.3530}};  // fashion-mnist
}

std::string default_data_path(const std::string& name) {
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (name == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

Dataset load_dataset(const DataSpec& spec) {
  const std::string& name = spec.name;
  const bool cifar = name == "cifar10" || name == "cifar100";
  const bool images = is_image_folder_dataset(name);
  if (!cifar && !images && name != "mnist" && name != "fashion-mnist") {
    throw UserError("data.name: unknown dataset '" + name + "' (known: " + joined_names() + ")");
  }
  if (spec.size < 0) {
    throw UserError("data.size: must be >= 0 (0 = all), got " + std::to_string(spec.size));
  }
  if (images) {
    image_sizes(spec);  // bad data.pixels / data.resize before anything is read
  } else {
    check_fixed_size(spec);
  }
  std::string path = spec.path.empty() ? default_data_path(name) : spec.path;
  if (path.empty() && images) {
    const std::string layout =
        name == "tinyimagenet"
            ? "the tiny-imagenet-200 folder: wnids.txt, train/<wnid>/images/*.JPEG, "
              "val/images/*.JPEG, val/val_annotations.txt"
            : "a folder with train/<class>/*.jpg|jpeg|png and val/<class>/*.jpg|jpeg|png";
    throw UserError("data.path: required for data.name=" + name + " (" + layout + ")");
  }
  if (path.empty()) {
    const std::string files = name == "cifar10" ? "data_batch_1.bin[.gz] ... test_batch.bin[.gz]"
                                                : "train.bin[.gz] and test.bin[.gz]";
    throw UserError("data.path: required for " + name + " (a folder with " + files + ")");
  }
  Dataset d;
  if (images) {
    d = load_image_dataset(spec);  // decodes only the first data.size / data.test_size files
  } else {
    d = name == "cifar10"    ? load_cifar10(path, spec.with_train)
        : name == "cifar100" ? load_cifar100(path, spec.with_train)
                             : load_mnist_like(name, path, spec.with_train);
  }
  if (spec.with_train) take_first(d.train, spec.size, "data.size", "training", name);
  take_first(d.test, spec.test_size, "data.test_size", "test", name);
  ChannelStats s = normalization_stats(name);
  d.mean = s.mean;
  d.std = s.std;
  d.pixels = d.test.images.size(2);
  return d;
}

void to_device(Dataset& data, const torch::Device& device) {
  for (ImageSet* set : {&data.train, &data.test}) {
    if (set->images.defined()) set->images = set->images.to(device);
    if (set->labels.defined()) set->labels = set->labels.to(device);
  }
}

torch::Tensor normalize(const torch::Tensor& images_u8, const Dataset& data) {
  const auto c = static_cast<int64_t>(data.mean.size());
  if (images_u8.dim() != 4 || images_u8.size(1) != c || data.std.size() != data.mean.size()) {
    throw std::invalid_argument("normalize: expected [n, " + std::to_string(c) +
                                ", H, W] images matching the dataset's mean/std");
  }
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(images_u8.device());
  // Built on the host from doubles, then one small copy to the images' device.
  auto mean = torch::tensor(data.mean, torch::kDouble).to(opts).view({1, c, 1, 1});
  auto std = torch::tensor(data.std, torch::kDouble).to(opts).view({1, c, 1, 1});
  return images_u8.to(torch::kFloat).div_(255.0).sub_(mean).div_(std);
}

}  // namespace fullbatch
