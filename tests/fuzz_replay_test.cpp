// Replays every seed of every fuzz target (fuzz/corpus/<target>/) through the target's body, so
// the normal g++ suite checks that each parser turns each seed into a result or a UserError.
// The libFuzzer builds (FULLBATCH_BUILD_FUZZERS) explore beyond the seeds; docs/reliability.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.h"

namespace fullbatch {
namespace {

using Target = int (*)(const uint8_t*, size_t);

std::vector<std::string> seeds(const std::string& target) {
  std::vector<std::string> out;
  const auto dir = std::filesystem::path(FULLBATCH_SOURCE_DIR) / "fuzz" / "corpus" / target;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file()) out.push_back(entry.path().string());
  return out;
}

void replay(const std::string& target, Target body) {
  const auto files = seeds(target);
  ASSERT_GE(files.size(), 5u) << "seed corpus of " << target << " is missing";
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NO_THROW(body(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) << file;
    // Every prefix too: truncation is the commonest corruption.
    for (size_t n = 0; n < bytes.size(); n += 1 + bytes.size() / 64)
      EXPECT_NO_THROW(body(reinterpret_cast<const uint8_t*>(bytes.data()), n)) << file << " @" << n;
  }
}

TEST(FuzzReplay, Cifar) {
  replay("cifar", fuzz::fuzz_cifar);
}
TEST(FuzzReplay, Idx) {
  replay("idx", fuzz::fuzz_idx);
}
TEST(FuzzReplay, Config) {
  replay("config", fuzz::fuzz_config);
}
TEST(FuzzReplay, Checkpoint) {
  replay("checkpoint", fuzz::fuzz_checkpoint);
}

}  // namespace
}  // namespace fullbatch
