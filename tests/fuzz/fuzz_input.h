#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Shared by the libFuzzer targets: a check that aborts (libFuzzer records the input) and a
// per-process scratch file for loaders that read from a path, as OSS-Fuzz's llama.cpp harness does.
namespace kvserve::fuzz {

#define KVSERVE_FUZZ_CHECK(cond)                                                    \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// Writes `data` to /tmp/kvserve-fuzz-PID-TAG and returns the path.
inline std::string WriteScratchFile(const uint8_t* data, size_t size, std::string_view tag) {
  const std::string path = "/tmp/kvserve-fuzz-" + std::to_string(getpid()) + "-" + std::string(tag);
  FILE* f = std::fopen(path.c_str(), "wb");
  KVSERVE_FUZZ_CHECK(f != nullptr);
  if (size > 0) KVSERVE_FUZZ_CHECK(std::fwrite(data, 1, size, f) == size);
  std::fclose(f);
  return path;
}

// A data file of the repository (tests/data/...).
inline std::string TestDataPath(std::string_view relative) {
  return std::string(KVSERVE_TEST_DATA_DIR) + "/" + std::string(relative);
}

}  // namespace kvserve::fuzz
