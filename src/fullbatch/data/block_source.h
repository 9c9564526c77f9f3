#pragma once
// From sample indices to the normalized (and augmented) image tensors of a block. Images stay
// uint8 on the device; a block is materialized only while it is being used.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "fullbatch/data/augment.h"
#include "fullbatch/data/dataset.h"

namespace fullbatch {

struct Block {
  torch::Tensor inputs;  // float [n, C, H, W], normalized, on the data's device
  torch::Tensor labels;  // int64 [n]
};

struct BlockSourceOptions {
  bool augment = true;      // crop-flip
  int64_t padding = 4;
  int64_t fixed_rounds = 0;  // N x fixed augmentation; 0 = live augmentation
  uint64_t seed = 0;
  bool channels_last = false;
  // "random-resized-crop" instead of crop-flip (`augment` and `padding` then unused): each
  // training image is cropped to a random box, resized to pixels x pixels and maybe flipped
  // (augment.h). Live only: fixed_rounds > 0 with it is a UserError.
  bool random_resized_crop = false;
  int64_t pixels = 0;  // the crops' side; 0 = the dataset's (Dataset::pixels)
};

// Turns sample indices into normalized (and augmented) blocks. A "sample" is a training image,
// or with N fixed rounds an (image, round) pair whose crop-flip was drawn once at construction:
// only 3 bytes per sample are stored, the images are produced block by block. With
// random_resized_crop a block is [n, C, pixels, pixels] whatever size the images are stored at.
class BlockSource {
 public:
  BlockSource(const Dataset& data, BlockSourceOptions options);

  int64_t num_samples() const;
  int64_t num_images() const { return data_.train.size(); }
  int64_t rounds() const { return options_.fixed_rounds; }

  // `samples`: int64 indices (any device). Live augmentation is drawn from a generator keyed by
  // (seed, step, block), so a block's images depend only on which block of which step it is.
  // A rank holding a slice of a larger (global) block passes the slice's offset and the whole
  // block's size, so its images get the same crops as in a single-process run. `draw` > 0 gives
  // the same block another, independent augmentation (the acc_strength pre-pass draws anew, as
  // the reference's second pass over its loader does).
  Block block(const torch::Tensor& samples, uint64_t step, uint64_t block_id, int64_t offset = 0,
              int64_t block_size = -1, uint64_t draw = 0) const;

  // Bytes held for the fixed augmentation table (0 for live augmentation).
  int64_t table_bytes() const;

 private:
  const Dataset& data_;
  BlockSourceOptions options_;
  // uint8 block -> normalized float (channels-last if asked).
  torch::Tensor finish_block(const torch::Tensor& x) const;
  // The live augmentation's generator of (step, block, draw).
  at::Generator augment_generator(uint64_t step, uint64_t block_id, uint64_t draw) const;

  torch::Tensor mean_, std_;  // [1, C, 1, 1] on the data's device
  int64_t crop_pixels_ = 0;   // random_resized_crop's output side
  // Fixed rounds: sample s is image s % n with offsets table_[s]; int8/bool tensors.
  torch::Tensor table_dx_, table_dy_, table_flip_;
};

// Block-wise evaluation data (no augmentation).
Block test_block(const Dataset& data, int64_t begin, int64_t end, bool channels_last);

}  // namespace fullbatch
