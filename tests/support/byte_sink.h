#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace kvserve::testing {

// Appends `value`'s little-endian bytes (the host's order; GGUF files are little endian).
template <typename T>
void Put(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

}  // namespace kvserve::testing
