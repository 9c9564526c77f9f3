#include "fullbatch/common/rng.h"

#include <ATen/CPUGeneratorImpl.h>

namespace fullbatch {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t seed, Stream stream, std::initializer_list<uint64_t> keys) {
  uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(stream)));
  for (uint64_t k : keys) h = mix64(h ^ mix64(k + 0x632be59bd9b4e019ULL));
  return h;
}

at::Generator keyed_generator(uint64_t seed, Stream stream, std::initializer_list<uint64_t> keys) {
  return at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, stream, keys));
}

}  // namespace fullbatch
