#pragma once
// The data order: which samples each block of a step (or batch of an SGD epoch) holds.
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace fullbatch {

// Which samples each block holds, for one step (full batch) or one epoch (SGD). This is the one
// place that decides the data order. Blocks have `batch_size` samples; an incomplete last block
// is dropped. The order is a pure function of (seed, clock), so resuming needs only the clock.
struct OrderSettings {
  int64_t num_samples = 0;
  int64_t batch_size = 128;
  bool shuffle = false;                  // a fresh permutation per clock tick
  bool with_replacement = false;         // SGD: every block drawn uniformly with replacement
  uint64_t seed = 0;
  int64_t first_sample = 0;              // a window [first, first + num) of the samples
  // N x fixed data: samples are rounds of `round_size` images; each round gets one permutation of
  // its own, drawn once, and the rounds follow each other (as the reference writes its database).
  bool permute_once = false;
  int64_t round_size = 0;
};

int64_t num_blocks(const OrderSettings& settings);

// CPU int64 tensors, one per block.
std::vector<torch::Tensor> block_order(const OrderSettings& settings, int64_t clock);

}  // namespace fullbatch
