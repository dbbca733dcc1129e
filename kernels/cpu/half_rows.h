#pragma once

#include <cstdint>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/cpu/half.h"

namespace kvserve::kernels::cpu {

// Rows of IEEE half or bfloat16 to and from float: the CPU KV cache's storage conversions. Each
// element converts on its own (round to nearest even), so the SIMD and scalar tails agree.
static inline void HalfRowToFloat(const uint16_t* in, float* out, int n) {
  int i = 0;
#if defined(__F16C__) && defined(__AVX2__)
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
#endif
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

static inline void FloatRowToHalf(const float* in, uint16_t* out, int n) {
  int i = 0;
#if defined(__F16C__) && defined(__AVX2__)
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

static inline void Bf16RowToFloat(const uint16_t* in, float* out, int n) {
  int i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= n; i += 8) {
    const __m256i h =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
  }
#endif
  for (; i < n; ++i) out[i] = Bf16ToFloat(in[i]);
}

static inline void FloatRowToBf16(const float* in, uint16_t* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = FloatToBf16(in[i]);
}

}  // namespace kvserve::kernels::cpu
