#pragma once

#include <bit>
#include <cstdint>

namespace kvserve::kernels {

// A bf16 value as stored in device memory: the bits of CUDA's __nv_bfloat16, usable by code
// compiled without CUDA (the CPU twins, the tests' host buffers).
struct Bf16 {
  uint16_t bits = 0;
};
static_assert(sizeof(Bf16) == 2);

inline float ToFloat(Bf16 b) { return std::bit_cast<float>(static_cast<uint32_t>(b.bits) << 16); }

// Round to nearest even, as __float2bfloat16_rn does; a NaN stays a (quiet) NaN.
inline Bf16 ToBf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return Bf16{static_cast<uint16_t>((u >> 16) | 0x0040u)};
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return Bf16{static_cast<uint16_t>(rounded >> 16)};
}

// The value a bf16 store keeps of `f`.
inline float RoundToBf16(float f) { return ToFloat(ToBf16(f)); }

}  // namespace kvserve::kernels
