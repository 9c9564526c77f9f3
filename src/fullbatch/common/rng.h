#pragma once
// Keyed random numbers: every draw in fullbatch (initialization, augmentation, data order,
// gradient noise) comes from a generator derived from (seed, stream, keys), so a run does not
// depend on how blocks are dealt to processes and resumes without any generator state.
#include <ATen/core/Generator.h>

#include <cstdint>
#include <initializer_list>

namespace fullbatch {

// Every random number in fullbatch comes from a generator keyed by (seed, stream, keys...), never
// from one running stream. A run therefore does not depend on how blocks are dealt to processes,
// and a checkpoint needs no generator state beyond the seed and the step to resume exactly.
enum class Stream : uint64_t {
  kInit = 1,          // model initialization
  kAugment = 2,       // live augmentation: keys (step, block)
  kOrder = 3,         // data order / sampling: keys (epoch or step)
  kNoise = 4,         // gradient noise: keys (step)
  kFixedAugment = 5,  // fixed N x augmentation table, drawn once
  kAnalysis = 6,      // analyses: keys (purpose, index), e.g. a Lanczos start or a landscape direction
};

// SplitMix64 finalizer: a bijective 64-bit mix with good avalanche.
uint64_t mix64(uint64_t x);

// A seed derived from (seed, stream, keys...). Different keys give statistically independent seeds.
uint64_t derive_seed(uint64_t seed, Stream stream, std::initializer_list<uint64_t> keys);

// A fresh CPU generator for (seed, stream, keys...).
at::Generator keyed_generator(uint64_t seed, Stream stream, std::initializer_list<uint64_t> keys);

}  // namespace fullbatch
