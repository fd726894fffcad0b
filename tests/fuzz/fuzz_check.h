// What every libFuzzer target of tests/fuzz shares: an invariant that does not hold aborts
// (libFuzzer keeps the input) naming the file and line, and an exception escaping the parser
// is a finding too. A target defines test_one_input(data, size) and ends with
// PARLEY_FUZZ_MAIN(test_one_input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace parley::fuzz {

[[noreturn]] inline void violated(const char* what, int line, const char* file = __builtin_FILE()) {
  const char* slash = std::strrchr(file, '/');
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n", slash != nullptr ? slash + 1 : file, line,
               what);
  std::abort();
}

template <typename F>
int run_one(F&& test, const uint8_t* data, size_t size, const char* file = __builtin_FILE()) {
  try {
    test(data, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    violated("an exception escaped", __LINE__, file);
  } catch (...) {
    violated("an exception escaped", __LINE__, file);
  }
  return 0;
}

}  // namespace parley::fuzz

#define PARLEY_FUZZ_CHECK(cond)                                       \
  do {                                                                \
    if (!(cond)) ::parley::fuzz::violated(#cond, __LINE__, __FILE__); \
  } while (0)

#define PARLEY_FUZZ_MAIN(test)                                              \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    return ::parley::fuzz::run_one(test, data, size, __FILE__);             \
  }
