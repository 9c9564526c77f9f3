#pragma once
// Datasets of image files: a folder of class folders (torchvision's ImageFolder layout, which is
// also ImageNet's once its validation images are sorted into class folders) and TinyImageNet in
// its official tiny-imagenet-200 layout. PNG and JPEG files are decoded with stb_image, brought to
// a fixed size once and kept in memory as uint8 [N, 3, H, W] like every other dataset; the random
// part of the augmentation (augment.h) then works on that stored size block by block.
#include <cstdint>
#include <string>

#include "fullbatch/data/dataset.h"

namespace fullbatch {

// The stored sizes of an image dataset, defaults resolved.
struct ImageSizes {
  int64_t pixels = 0;  // side of the test images (the evaluation's center crop) = the model's input
  int64_t resize = 0;  // the shorter side is resized to this; training images keep resize x resize
};

// Resolves data.pixels / data.resize (0 = default) for "imagefolder", "imagenet" (224 and
// round(pixels * 256 / 224), i.e. Resize(256) + CenterCrop(224) at the default) and
// "tinyimagenet" (64 and 64: stored as they are). Throws a UserError naming the key on a value
// that cannot work (negative, resize < pixels, anything but 64 for TinyImageNet).
ImageSizes image_sizes(const DataSpec& spec);

// Loads spec.path as spec.name ("imagefolder", "imagenet" or "tinyimagenet"), decoding only the
// first spec.size training and spec.test_size test files (0 = all) in file order. File order is
// class by class (classes sorted by name, then files sorted by name), so the first N images cover
// the first classes only. Every problem (missing folder, empty class, unreadable image, bad
// annotation line) is a one-line UserError naming the file or folder.
Dataset load_image_dataset(const DataSpec& spec);

// Python's round() on (size - crop) / 2, as torchvision's CenterCrop computes its offset: an exact
// half goes to the even neighbour.
int64_t center_crop_offset(int64_t size, int64_t crop);

// The size torchvision's Resize(resize) gives an image of height x width: the shorter side becomes
// `resize`, the longer int(resize * longer / shorter) (truncated, as torchvision does).
void resized_size(int64_t height, int64_t width, int64_t resize, int64_t* out_height,
                  int64_t* out_width);

// Resize(resize) followed by CenterCrop(crop) of an RGB image (`hwc`: height x width x 3 bytes,
// rows contiguous) into `chw_out` (3 x crop x crop bytes, channels first). The resize is PIL's
// BILINEAR resample (a triangle filter whose support grows with the reduction, so downscaling
// averages like an antialiased resize; 22-bit fixed-point weights, horizontal pass then vertical,
// the intermediate rounded to bytes), which torchvision's Resize uses on PIL images; the result is
// the same bytes PIL gives. Only the pixels inside the crop are computed. Needs crop <= resize.
void resize_center_crop(const uint8_t* hwc, int64_t height, int64_t width, int64_t resize,
                        int64_t crop, uint8_t* chw_out);

}  // namespace fullbatch
