// The x86 dot kernels, written once and compiled twice: vec_dot_avx2.cc (maddubs + madd) and
// vec_dot_avx512vnni.cc (vpdpbusd), which define KVSERVE_X86_VNNI to 0 or 1 before including
// this. Everything here has internal linkage, so the two copies never meet.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/dot_rows.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/k_quant_scales.h"

#ifndef KVSERVE_X86_VNNI
#error "define KVSERVE_X86_VNNI before including vec_dot_x86_impl.h"
#endif

namespace kvserve::kernels::cpu {
namespace {

inline float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float HalfAt(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

inline __m256i Load32(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Eight int32 partial sums of u8 x s8 products, lane i covering bytes 4i..4i+3.
inline __m256i MulSumU8S8(__m256i u, __m256i s) {
#if KVSERVE_X86_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Signed x signed through the unsigned form: |w| * (x with w's sign).
inline __m256i MulSumS8S8(__m256i w, __m256i x) {
  return MulSumU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

// u8 weights against both activation planes of a block: (dot_q << 8) + dot_r per lane.
inline __m256i DotU8(__m256i u, const Q8Block& x) {
  return _mm256_add_epi32(_mm256_slli_epi32(MulSumU8S8(u, Load32(x.q)), 8),
                          MulSumU8S8(u, Load32(x.r)));
}

// Q4_0 / Q4_1 nibbles as 32 bytes: low nibbles of bytes 0..15 first, then the high nibbles.
inline __m256i Nibbles16(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

float DotF32(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  const float* wf = reinterpret_cast<const float*>(w);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(x + i + 8), a1);
  }
  float sum = Sum8(_mm256_add_ps(a0, a1));
  for (; i < k; ++i) {
    float v;
    std::memcpy(&v, w + 4 * i, sizeof(v));
    sum += v * x[i];
  }
  return sum;
}

float DotF16(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    const __m256 w1 =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i + 16)));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  float sum = Sum8(_mm256_add_ps(a0, a1));
  for (; i < k; ++i) sum += HalfAt(w + 2 * i) * x[i];
  return sum;
}

float DotBF16(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256i h =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    acc =
        _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h, 16)), _mm256_loadu_ps(x + i), acc);
  }
  float sum = Sum8(acc);
  for (; i < k; ++i) sum += Bf16ToFloat(LoadU16(w + 2 * i)) * x[i];
  return sum;
}

// The 32-element formats: how a block's weights unpack to one register and dot with a Q8
// block's two planes; the offset term (Q4_0's -8, Q4_1's m) goes to a separate scalar sum.
// (A two-weight-row variant sharing the activation loads measured 1.7x slower at decode here.)
struct Q8_0Block {
  static constexpr int kBytes = 34;
  static __m256i Weights(const uint8_t* w) { return Load32(w + 2); }
  static __m256i Dot(__m256i wq, const Q8Block& x) {
    return _mm256_add_epi32(_mm256_slli_epi32(MulSumS8S8(wq, Load32(x.q)), 8),
                            MulSumS8S8(wq, Load32(x.r)));
  }
  static float Bias(const uint8_t*, const Q8Block&) { return 0.0f; }
};

struct Q4_0Block {
  static constexpr int kBytes = 18;
  static __m256i Weights(const uint8_t* w) { return Nibbles16(w + 2); }
  static __m256i Dot(__m256i u, const Q8Block& x) { return DotU8(u, x); }
  static float Bias(const uint8_t* w, const Q8Block& x) { return -8.0f * HalfAt(w) * x.sum; }
};

struct Q4_1Block {
  static constexpr int kBytes = 20;
  static __m256i Weights(const uint8_t* w) { return Nibbles16(w + 4); }
  static __m256i Dot(__m256i u, const Q8Block& x) { return DotU8(u, x); }
  static float Bias(const uint8_t* w, const Q8Block& x) { return HalfAt(w + 2) * x.sum; }
};

// One weight row against kTile activation rows: each block is unpacked once and dotted with every
// row (batched decode used to redo the unpack per activation row).
template <typename B, int kTile>
void Row32Tile(const uint8_t* w, const Q8Block* const* x, int64_t k, float* out) {
  __m256 acc[kTile];
  float bias[kTile];
  for (int i = 0; i < kTile; ++i) acc[i] = _mm256_setzero_ps(), bias[i] = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b, w += B::kBytes) {
    const __m256i u = B::Weights(w);
    const float d = HalfAt(w);
    for (int i = 0; i < kTile; ++i) {
      const Q8Block& xb = x[i][b];
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(B::Dot(u, xb)), _mm256_set1_ps(d * xb.d), acc[i]);
      bias[i] += B::Bias(w, xb);
    }
  }
  for (int i = 0; i < kTile; ++i) out[i] = Sum8(acc[i]) + bias[i];
}

// Rows of a 32-element format, the activation rows in tiles of up to 4.
template <typename B>
void Rows32(const MatVecArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int kTile = 4;
  const int64_t q_blocks = a.k / kQ8BlockSize;
  for (int64_t j = row_begin; j < row_end; ++j) {
    const uint8_t* w = a.w + static_cast<size_t>(j) * a.row_bytes;
    for (int i0 = 0; i0 < a.m; i0 += kTile) {
      const int n = std::min(kTile, a.m - i0);
      const Q8Block* x[kTile];
      for (int i = 0; i < n; ++i) x[i] = a.xq + (i0 + i) * q_blocks;
      float v[kTile];
      switch (n) {
        case 4:
          Row32Tile<B, 4>(w, x, a.k, v);
          break;
        case 3:
          Row32Tile<B, 3>(w, x, a.k, v);
          break;
        case 2:
          Row32Tile<B, 2>(w, x, a.k, v);
          break;
        default:
          Row32Tile<B, 1>(w, x, a.k, v);
          break;
      }
      for (int i = 0; i < n; ++i) {
        float& o = a.y[(i0 + i) * a.ldy + j];
        o = a.accumulate ? o + v[i] : v[i];
      }
    }
  }
}

template <bool kFifthBit>
float DotKQuant45(const uint8_t* w, const Q8Block* x, int64_t k, int bytes, int scales_at,
                  int qs_at) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float bias = 0.0f;
  for (int64_t b = 0; b < k / kQK; ++b, w += bytes, x += 8) {
    const float d = HalfAt(w);
    const float dmin = HalfAt(w + 2);
    const __m256i qh = kFifthBit ? Load32(w + Q5KLayout::kQh) : _mm256_setzero_si256();
    for (int j = 0; j < 8; j += 2) {
      uint8_t sc0, m0, sc1, m1;
      KQuantScaleMin(j, w + scales_at, &sc0, &m0);
      KQuantScaleMin(j + 1, w + scales_at, &sc1, &m1);
      const __m256i q = Load32(w + qs_at + 16 * j);
      __m256i u0 = _mm256_and_si256(q, low4);
      __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (kFifthBit) {
        u0 = _mm256_or_si256(u0,
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j), one), 4));
        u1 = _mm256_or_si256(
            u1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j + 1), one), 4));
      }
      const __m256i p0 = DotU8(u0, x[j]);
      const __m256i p1 = DotU8(u1, x[j + 1]);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * sc0 * x[j].d), acc);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * sc1 * x[j + 1].d), acc);
      bias -= dmin * (m0 * x[j].sum + m1 * x[j + 1].sum);
    }
  }
  return Sum8(acc) + bias;
}

float DotQ4_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  return DotKQuant45<false>(w, x, k, Q4KLayout::kBytes, Q4KLayout::kScales, Q4KLayout::kQs);
}

float DotQ5_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  return DotKQuant45<true>(w, x, k, Q5KLayout::kBytes, Q5KLayout::kScales, Q5KLayout::kQs);
}

// Q6_K: unsigned 6-bit values u; sum (u - 32) x = sum u x - sum 32 x, per lane. Lanes 0-3 cover
// the sub-block's first 16 elements (one scale), lanes 4-7 the second 16 (the next scale).
float DotQ6_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  using L = Q6KLayout;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const __m256i k32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / kQK; ++b, w += L::kBytes, x += 8) {
    const float d = HalfAt(w + L::kD);
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + L::kScales);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = Load32(w + L::kQl + 64 * h);
      const __m256i ql1 = Load32(w + L::kQl + 64 * h + 32);
      const __m256i qh = Load32(w + L::kQh + 32 * h);
      for (int p = 0; p < 4; ++p) {
        const int sub = 4 * h + p;
        const __m256i ql = (p & 1) ? ql1 : ql0;
        const __m256i lo =
            p < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), low2);
        const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        // sum (u - 32) x = sum u x - sum 32 x, both planes.
        const __m256i p32 = _mm256_sub_epi32(DotU8(u, x[sub]), DotU8(k32, x[sub]));
        const float s = d * x[sub].d;
        const __m256 scale =
            _mm256_setr_m128(_mm_set1_ps(s * sc[2 * sub]), _mm_set1_ps(s * sc[2 * sub + 1]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc);
      }
    }
  }
  return Sum8(acc);
}

const DotKernelTable& X86KernelTable(Isa isa) {
  static const DotKernelTable table{
      isa,
      {RowsOf<DotF32>, RowsOf<DotF16>, RowsOf<DotBF16>, Rows32<Q8_0Block>, Rows32<Q4_0Block>,
       Rows32<Q4_1Block>, RowsOf<DotQ4_K>, RowsOf<DotQ5_K>, RowsOf<DotQ6_K>}};
  return table;
}

}  // namespace
}  // namespace kvserve::kernels::cpu
