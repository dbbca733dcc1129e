#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "absl/status/status.h"
#include "engine/model/ggml_type.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace kvserve {

// IEEE half -> float without hardware support: exact for every input (subnormals, +-inf, NaN
// payloads, -0).
inline float Fp16ToF32Portable(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: shift the leading one up to the implicit position, lowering the exponent.
    uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// IEEE half -> float, using F16C where the build targets it.
inline float Fp16ToF32(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return Fp16ToF32Portable(h);
#endif
}

// bfloat16 is the top half of a float32.
inline float Bf16ToF32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Whether DequantizeToF32 handles `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K).
bool CanDequantize(GgmlType type);

// Decodes `dst.size()` elements of `type` from `src` (ggml's little-endian block layout).
// InvalidArgument unless `src` holds exactly that many elements; Unimplemented for a type
// CanDequantize rejects, naming it.
absl::Status DequantizeToF32(GgmlType type, std::span<const uint8_t> src, std::span<float> dst);

}  // namespace kvserve
