#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "absl/status/status.h"
#include "engine/model/ggml_type.h"
#include "kernels/cpu/half.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace kvserve {

// IEEE half -> float without hardware support: exact for every input (subnormals, +-inf, NaN
// payloads, -0). One implementation, the CPU kernels'.
inline float Fp16ToF32Portable(uint16_t h) { return kernels::cpu::HalfToFloat(h); }

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
