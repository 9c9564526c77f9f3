#include "fullbatch/data/block_source.h"

#include <torch/torch.h>

#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"

namespace fullbatch {
namespace {

torch::Tensor finish(torch::Tensor x, const Dataset& data, bool channels_last) {
  x = normalize(x, data);
  return x.contiguous(channels_last ? torch::MemoryFormat::ChannelsLast
                                    : torch::MemoryFormat::Contiguous);
}

// [1, C, 1, 1] float on `device`: built once, not once per block (a host-to-device copy each).
torch::Tensor channel_constants(const std::vector<double>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kDouble)
      .to(torch::kFloat)
      .view({1, static_cast<int64_t>(values.size()), 1, 1})
      .to(device);
}

}  // namespace

BlockSource::BlockSource(const Dataset& data, BlockSourceOptions options)
    : data_(data), options_(options) {
  mean_ = channel_constants(data_.mean, data_.train.images.device());
  std_ = channel_constants(data_.std, data_.train.images.device());
  if (options_.random_resized_crop) {
    if (options_.fixed_rounds > 0) {
      throw UserError(
          "data.fixed_augmentations is not supported with "
          "data.augmentations=random-resized-crop");
    }
    crop_pixels_ = options_.pixels > 0 ? options_.pixels
                   : data_.pixels > 0  ? data_.pixels
                                       : data_.height();
  }
  if (options_.fixed_rounds > 0) {
    const int64_t total = options_.fixed_rounds * data_.train.size();
    auto gen = keyed_generator(options_.seed, Stream::kFixedAugment, {});
    CropFlipParams p = draw_crop_flip(total, options_.padding, gen);
    const auto device = data_.train.images.device();
    table_dx_ = p.dx.to(torch::kInt8).to(device);
    table_dy_ = p.dy.to(torch::kInt8).to(device);
    table_flip_ = p.flip.to(torch::kBool).to(device);
  }
}

int64_t BlockSource::num_samples() const {
  return std::max<int64_t>(1, options_.fixed_rounds) * data_.train.size();
}

int64_t BlockSource::table_bytes() const {
  if (!table_dx_.defined()) return 0;
  return table_dx_.nbytes() + table_dy_.nbytes() + table_flip_.nbytes();
}

Block BlockSource::block(const torch::Tensor& samples, uint64_t step, uint64_t block_id,
                         int64_t offset, int64_t block_size, uint64_t draw) const {
  const auto device = data_.train.images.device();
  // non_blocking: no stream synchronization per block (see apply_crop_flip).
  torch::Tensor s = samples.to(device, torch::kInt64, /*non_blocking=*/true);
  if (options_.fixed_rounds > 0) {
    torch::Tensor images = s.remainder(data_.train.size());
    torch::Tensor x = data_.train.images.index_select(0, images);
    CropFlipParams p{table_dx_.index_select(0, s).to(torch::kInt64),
                     table_dy_.index_select(0, s).to(torch::kInt64),
                     table_flip_.index_select(0, s)};
    x = apply_crop_flip(x, p, options_.padding);
    return {finish_block(x), data_.train.labels.index_select(0, images)};
  }
  torch::Tensor x = data_.train.images.index_select(0, s);
  if (options_.random_resized_crop) {
    auto gen = augment_generator(step, block_id, draw);
    const int64_t n = x.size(0);
    ResizedCropParams p =
        draw_resized_crop(block_size < 0 ? n : block_size, x.size(2), x.size(3), gen);
    if (block_size >= 0) p = p.slice(offset, offset + n);
    x = apply_resized_crop(x, p, crop_pixels_);
  } else if (options_.augment) {
    auto gen = augment_generator(step, block_id, draw);
    const int64_t n = x.size(0);
    CropFlipParams p = draw_crop_flip(block_size < 0 ? n : block_size, options_.padding, gen);
    if (block_size >= 0)
      p = {p.dx.slice(0, offset, offset + n), p.dy.slice(0, offset, offset + n),
           p.flip.slice(0, offset, offset + n)};
    x = apply_crop_flip(x, p, options_.padding);
  }
  return {finish_block(x), data_.train.labels.index_select(0, s)};
}

at::Generator BlockSource::augment_generator(uint64_t step, uint64_t block_id,
                                             uint64_t draw) const {
  return draw == 0 ? keyed_generator(options_.seed, Stream::kAugment, {step, block_id})
                   : keyed_generator(options_.seed, Stream::kAugment, {step, block_id, draw});
}

torch::Tensor BlockSource::finish_block(const torch::Tensor& images) const {
  // Image folders store training images at data.resize; without random-resized-crop the model
  // still sees data.pixels, the evaluation's center crop. (Other datasets store that size.)
  torch::Tensor x = images;
  const int64_t side = data_.pixels;
  if (side > 0 && (x.size(2) > side || x.size(3) > side)) {
    x = x.narrow(2, (x.size(2) - side) / 2, side).narrow(3, (x.size(3) - side) / 2, side);
  }
  // The same arithmetic as normalize(), with the per-channel constants already on the device.
  torch::Tensor y = x.to(torch::kFloat).div_(255.0).sub_(mean_).div_(std_);
  return options_.channels_last ? y.contiguous(torch::MemoryFormat::ChannelsLast) : y;
}

Block test_block(const Dataset& data, int64_t begin, int64_t end, bool channels_last) {
  return {finish(data.test.images.slice(0, begin, end), data, channels_last),
          data.test.labels.slice(0, begin, end)};
}

}  // namespace fullbatch
