#pragma once
// A dataset in memory (train and test splits as uint8 tensors, normalization statistics,
// class names) and the loader that picks the reader for data.name.
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fullbatch/common/names.h"  // dataset_names(): the names load_dataset accepts

namespace fullbatch {

// Images stay uint8 in memory ([N, C, H, W]); conversion to float happens per block.
struct ImageSet {
  torch::Tensor images;  // uint8 [N, C, H, W], contiguous
  torch::Tensor labels;  // int64 [N]
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

struct Dataset {
  std::string name;  // one of dataset_names()
  ImageSet train;
  ImageSet test;
  int64_t num_classes = 0;
  std::vector<double> mean;  // per channel, on the [0, 1] scale
  std::vector<double> std;   // per channel, on the [0, 1] scale
  std::vector<std::string> class_names;
  // The side of the images the model sees: the test images' side. Image folders store their
  // training images larger (data.resize) and random-resized-crop cuts them to this side.
  int64_t pixels = 0;

  // Image shape, from whichever split is loaded (evaluation loads the test split alone).
  const torch::Tensor& any_images() const {
    return train.images.defined() ? train.images : test.images;
  }
  int64_t channels() const { return any_images().size(1); }
  int64_t height() const { return any_images().size(2); }
  int64_t width() const { return any_images().size(3); }
};

struct DataSpec {
  std::string name = "cifar10";
  std::string path;  // empty: the dataset's standard location (Debian's for Fashion-MNIST/MNIST)
  // First N training images in file order; 0 = all. Image folders are in class order (classes
  // sorted, files sorted within each), so there the first N hold the first classes only.
  int64_t size = 0;
  int64_t test_size = 0;   // first N test images (quick checks); 0 = all, as the paper evaluates
  bool with_train = true;  // false: the test split alone (evaluating saved weights)
  // Image folders (image_folder.h): the evaluation's center crop and the model's input side
  // (0 = 224 for imagefolder/imagenet, 64 for tinyimagenet), and the side the shorter side is
  // resized to (0 = round(pixels * 256 / 224), 256 at the default; 64 for tinyimagenet). The other
  // datasets take 0 or their own side for pixels and 0 for resize.
  int64_t pixels = 0;
  int64_t resize = 0;
};

// Per-channel mean and standard deviation on the [0, 1] scale that a dataset's images are
// normalized with (the reference's values where it has the dataset).
struct ChannelStats {
  std::vector<double> mean, std;
};
ChannelStats normalization_stats(const std::string& name);

// The folder used when DataSpec::path is empty, or "" when the dataset has none.
std::string default_data_path(const std::string& name);

// Loads and validates every file; throws UserError naming the file and the problem.
Dataset load_dataset(const DataSpec& spec);

// Moves both splits to `device` (images stay uint8).
void to_device(Dataset& data, const torch::Device& device);

// uint8 [n, C, H, W] (any device) -> float32 normalized with the dataset's mean/std.
torch::Tensor normalize(const torch::Tensor& images_u8, const Dataset& data);

}  // namespace fullbatch
