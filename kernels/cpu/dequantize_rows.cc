#include "kernels/cpu/dequantize_rows.h"

#include <cstring>

#include "kernels/cpu/half.h"
#include "kernels/cpu/k_quant_scales.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace kvserve::kernels::cpu {
namespace {

float Half(const uint8_t* p) {
#if defined(__F16C__)
  return _cvtsh_ss(LoadU16(p));
#else
  return HalfToFloat(LoadU16(p));
#endif
}

void RowQ8_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, src += 34, dst += 32) {
    const float d = Half(src);
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < 32; ++j) dst[j] = d * static_cast<float>(q[j]);
  }
}

void RowQ4_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, src += 18, dst += 32) {
    const float d = Half(src);
    uint8_t q[16];
    std::memcpy(q, src + 2, sizeof(q));
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>((q[j] & 0x0f) - 8);
      dst[j + 16] = d * static_cast<float>((q[j] >> 4) - 8);
    }
  }
}

void RowQ4_1(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, src += 20, dst += 32) {
    const float d = Half(src);
    const float m = Half(src + 2);
    uint8_t q[16];
    std::memcpy(q, src + 4, sizeof(q));
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>(q[j] & 0x0f) + m;
      dst[j + 16] = d * static_cast<float>(q[j] >> 4) + m;
    }
  }
}

// Q4_K: eight 32-element sub-blocks; sub-block j is the low (even j) or high (odd j) nibbles of
// bytes 32 * (j / 2) .. + 31, x = d * scale_j * q - dmin * min_j.
void RowQ4_K(const uint8_t* src, float* dst, int64_t blocks) {
  using L = Q4KLayout;
  for (int64_t b = 0; b < blocks; ++b, src += L::kBytes, dst += kQK) {
    const float d = Half(src + L::kD);
    const float dmin = Half(src + L::kDmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      KQuantScaleMin(j, src + L::kScales, &sc, &m);
      const float scale = d * sc, offset = dmin * m;
      const uint8_t* q = src + L::kQs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l)
        dst[32 * j + l] = scale * static_cast<float>((q[l] >> shift) & 0xf) - offset;
    }
  }
}

// Q5_K: Q4_K plus a fifth bit per element, bit j of qh[l] for sub-block j.
void RowQ5_K(const uint8_t* src, float* dst, int64_t blocks) {
  using L = Q5KLayout;
  for (int64_t b = 0; b < blocks; ++b, src += L::kBytes, dst += kQK) {
    const float d = Half(src + L::kD);
    const float dmin = Half(src + L::kDmin);
    const uint8_t* qh = src + L::kQh;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      KQuantScaleMin(j, src + L::kScales, &sc, &m);
      const float scale = d * sc, offset = dmin * m;
      const uint8_t* q = src + L::kQs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xf) | (((qh[l] >> j) & 1) << 4);
        dst[32 * j + l] = scale * static_cast<float>(v) - offset;
      }
    }
  }
}

// Q6_K: two 128-element halves; part p (0..3) of half h takes nibbles of ql[64h + 32(p&1) + l]
// (low for p < 2) and bits 2p..2p+1 of qh[32h + l]; sixteen int8 scales, one per 16 elements.
void RowQ6_K(const uint8_t* src, float* dst, int64_t blocks) {
  using L = Q6KLayout;
  for (int64_t b = 0; b < blocks; ++b, src += L::kBytes, dst += kQK) {
    const float d = Half(src + L::kD);
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + L::kScales);
    for (int sub = 0; sub < 8; ++sub) {
      const int h = sub / 4, p = sub % 4;
      const uint8_t* ql = src + L::kQl + 64 * h + 32 * (p & 1);
      const uint8_t* qh = src + L::kQh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int lo = p < 2 ? (ql[l] & 0xf) : (ql[l] >> 4);
        const int v = (lo | (((qh[l] >> (2 * p)) & 3) << 4)) - 32;
        dst[32 * sub + l] = d * static_cast<float>(sc[2 * sub + l / 16]) * static_cast<float>(v);
      }
    }
  }
}

}  // namespace

void DequantizeRow(WeightFormat format, const uint8_t* src, float* dst, int64_t n) {
  const FormatLayout layout = LayoutOf(format);
  const int64_t blocks = n / layout.block_size;
  switch (format) {
    case WeightFormat::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case WeightFormat::kF16: {
      int64_t i = 0;
#if defined(__F16C__)
      for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
      }
#endif
      for (; i < n; ++i) dst[i] = HalfToFloat(LoadU16(src + 2 * i));
      return;
    }
    case WeightFormat::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(LoadU16(src + 2 * i));
      return;
    case WeightFormat::kQ8_0:
      return RowQ8_0(src, dst, blocks);
    case WeightFormat::kQ4_0:
      return RowQ4_0(src, dst, blocks);
    case WeightFormat::kQ4_1:
      return RowQ4_1(src, dst, blocks);
    case WeightFormat::kQ4_K:
      return RowQ4_K(src, dst, blocks);
    case WeightFormat::kQ5_K:
      return RowQ5_K(src, dst, blocks);
    case WeightFormat::kQ6_K:
      return RowQ6_K(src, dst, blocks);
  }
}

void DequantizeRows(WeightFormat format, const uint8_t* matrix, int64_t cols, int64_t r0,
                    int64_t r1, float* dst) {
  const size_t row_bytes = RowBytesOf(format, cols);
  for (int64_t r = r0; r < r1; ++r, dst += cols)
    DequantizeRow(format, matrix + static_cast<size_t>(r) * row_bytes, dst, cols);
}

}  // namespace kvserve::kernels::cpu
