#pragma once
// Each fuzz target is a plain function `int fuzz_<name>(const uint8_t*, size_t)` that feeds the
// bytes to one parser and swallows only UserError (the one-line, exit-code-2 failure every bad
// input must end in). Anything else escaping, or a sanitizer report, is a bug.
//
// Under libFuzzer (FULLBATCH_LIBFUZZER) each target file also becomes the fuzzer's entry point;
// in the normal test build the functions are linked into fullbatch_tests, which replays the seed
// corpus in fuzz/corpus/<name>/ (tests/fuzz_replay_test.cpp).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fullbatch/common/error.h"

#ifdef FULLBATCH_LIBFUZZER
#define FULLBATCH_FUZZ_ENTRY(fn)                                            \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    return fn(data, size);                                                  \
  }
#else
#define FULLBATCH_FUZZ_ENTRY(fn)
#endif

namespace fullbatch::fuzz {

// Every user error is one line: the CLI prints it as is.
inline void one_line_or_trap(const UserError& e) {
  if (std::strchr(e.what(), '\n') != nullptr) __builtin_trap();
}

int fuzz_cifar(const uint8_t* data, size_t size);
int fuzz_idx(const uint8_t* data, size_t size);
int fuzz_config(const uint8_t* data, size_t size);
int fuzz_checkpoint(const uint8_t* data, size_t size);
}  // namespace fullbatch::fuzz
