#include "kernels/cpu/quantize_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/half.h"

namespace kvserve::kernels::cpu {
namespace {

void StoreU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }

void RowQ8_0(const float* x, uint8_t* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += 32, out += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreU16(out, FloatToHalf(d));
    for (int j = 0; j < 32; ++j)
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::nearbyint(x[j] * id)));
  }
}

// Q4_0: the element of largest magnitude maps to -8, x = d * (q - 8).
void RowQ4_0(const float* x, uint8_t* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += 32, out += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreU16(out, FloatToHalf(d));
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      out[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Q4_1: x = d * q + m over [min, max] in 15 steps.
void RowQ4_1(const float* x, uint8_t* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += 32, out += 20) {
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreU16(out, FloatToHalf(d));
    StoreU16(out + 2, FloatToHalf(min));
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int hi = std::min(15, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      out[4 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace

bool CanQuantizeTo(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32:
    case WeightFormat::kF16:
    case WeightFormat::kBF16:
    case WeightFormat::kQ8_0:
    case WeightFormat::kQ4_0:
    case WeightFormat::kQ4_1:
      return true;
    default:
      return false;
  }
}

void QuantizeRow(WeightFormat format, const float* src, uint8_t* dst, int64_t n) {
  switch (format) {
    case WeightFormat::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case WeightFormat::kF16:
      for (int64_t i = 0; i < n; ++i) StoreU16(dst + 2 * i, FloatToHalf(src[i]));
      return;
    case WeightFormat::kBF16:
      for (int64_t i = 0; i < n; ++i) StoreU16(dst + 2 * i, FloatToBf16(src[i]));
      return;
    case WeightFormat::kQ8_0:
      return RowQ8_0(src, dst, n / 32);
    case WeightFormat::kQ4_0:
      return RowQ4_0(src, dst, n / 32);
    case WeightFormat::kQ4_1:
      return RowQ4_1(src, dst, n / 32);
    default:
      return;  // rejected by CanQuantizeTo
  }
}

}  // namespace kvserve::kernels::cpu
