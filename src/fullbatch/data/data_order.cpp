#include "fullbatch/data/data_order.h"

#include <torch/torch.h>

#include "fullbatch/common/rng.h"

namespace fullbatch {

int64_t num_blocks(const OrderSettings& s) { return s.num_samples / s.batch_size; }

std::vector<torch::Tensor> block_order(const OrderSettings& s, int64_t clock) {
  const int64_t blocks = num_blocks(s);
  auto options = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor order;
  if (s.with_replacement) {
    auto gen = keyed_generator(s.seed, Stream::kOrder, {static_cast<uint64_t>(clock), 1});
    order = at::randint(s.num_samples, {blocks * s.batch_size}, gen, options);
  } else if (s.shuffle) {
    auto gen = keyed_generator(s.seed, Stream::kOrder, {static_cast<uint64_t>(clock), 0});
    order = at::randperm(s.num_samples, gen, options);
  } else if (s.permute_once) {
    // The reference writes its N x augmented database round by round, each round shuffled on its
    // own: a block holds images of one round (except where a block straddles two rounds).
    const int64_t n = s.round_size > 0 ? s.round_size : s.num_samples;
    std::vector<torch::Tensor> rounds;
    for (int64_t r = 0; r * n < s.num_samples; ++r) {
      auto gen = keyed_generator(s.seed, Stream::kOrder, {~uint64_t{0}, 3, static_cast<uint64_t>(r)});
      rounds.push_back(at::randperm(std::min(n, s.num_samples - r * n), gen, options) + r * n);
    }
    order = torch::cat(rounds);
  } else {
    order = torch::arange(s.num_samples, options);
  }
  order = order + s.first_sample;
  std::vector<torch::Tensor> out;
  out.reserve(blocks);
  for (int64_t b = 0; b < blocks; ++b)
    out.push_back(order.slice(0, b * s.batch_size, (b + 1) * s.batch_size).contiguous());
  return out;
}

}  // namespace fullbatch
