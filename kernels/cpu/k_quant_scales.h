#pragma once

#include <cstdint>

namespace kvserve::kernels::cpu {

// Internal linkage (static): the AVX-512 translation unit includes this too, and its copies must
// never be the ones the linker keeps for code that runs on CPUs without AVX-512.

// Q4_K / Q5_K pack eight 6-bit (scale, min) pairs into 12 bytes: pairs 0-3 in the low six bits
// of bytes 0-7, pairs 4-7 split between bytes 8-11 and the top two bits of bytes 0-7.
static inline void KQuantScaleMin(int j, const uint8_t* s, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Byte offsets inside the 256-element K-quant super-blocks.
inline constexpr int kQK = 256;
struct Q4KLayout {
  static constexpr int kD = 0, kDmin = 2, kScales = 4, kQs = 16, kBytes = 144;
};
struct Q5KLayout {
  static constexpr int kD = 0, kDmin = 2, kScales = 4, kQh = 16, kQs = 48, kBytes = 176;
};
struct Q6KLayout {
  static constexpr int kQl = 0, kQh = 128, kScales = 192, kD = 208, kBytes = 210;
};

}  // namespace kvserve::kernels::cpu
