#include "tests/support/ggml_quantize.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/support/byte_sink.h"

namespace kvserve::testing {
namespace {

constexpr size_t kQk = 32;

void QuantizeQ8_0Block(const float* x, std::vector<uint8_t>& out) {
  float amax = 0.0f;
  for (size_t j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  Put(out, F32ToF16Bits(d));
  for (size_t j = 0; j < kQk; ++j) Put(out, static_cast<int8_t>(std::round(x[j] * id)));
}

void QuantizeQ4_0Block(const float* x, std::vector<uint8_t>& out) {
  float amax = 0.0f;
  float max = 0.0f;  // the signed value of largest magnitude
  for (size_t j = 0; j < kQk; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  Put(out, F32ToF16Bits(d));
  for (size_t j = 0; j < kQk / 2; ++j) {
    const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
    const int hi = std::min(15, static_cast<int>(x[j + kQk / 2] * id + 8.5f));
    Put(out, static_cast<uint8_t>(lo | (hi << 4)));
  }
}

void QuantizeQ4_1Block(const float* x, std::vector<uint8_t>& out) {
  const auto [min_it, max_it] = std::minmax_element(x, x + kQk);
  const float min = *min_it;
  const float d = (*max_it - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  Put(out, F32ToF16Bits(d));
  Put(out, F32ToF16Bits(min));
  for (size_t j = 0; j < kQk / 2; ++j) {
    const int lo = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
    const int hi = std::min(15, static_cast<int>((x[j + kQk / 2] - min) * id + 0.5f));
    Put(out, static_cast<uint8_t>(lo | (hi << 4)));
  }
}

}  // namespace

// Maratyszcza's FP16 conversion (as in ggml): float arithmetic does the rounding.
uint16_t F32ToF16Bits(float x) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (std::fabs(x) * scale_to_inf) * scale_to_zero;
  const uint32_t w = std::bit_cast<uint32_t>(x);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = std::max(shl1_w & 0xff000000u, 0x71000000u);
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = std::bit_cast<uint32_t>(base);
  const uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

uint16_t F32ToBf16Bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

absl::StatusOr<std::vector<uint8_t>> QuantizeFromF32(GgmlType type, std::span<const float> values) {
  absl::StatusOr<uint64_t> size = RowBytes(type, values.size());
  if (!size.ok()) return size.status();
  std::vector<uint8_t> out;
  out.reserve(*size);
  switch (type) {
    case GgmlType::kF32:
      for (float v : values) Put(out, v);
      break;
    case GgmlType::kF16:
      for (float v : values) Put(out, F32ToF16Bits(v));
      break;
    case GgmlType::kBF16:
      for (float v : values) Put(out, F32ToBf16Bits(v));
      break;
    case GgmlType::kQ8_0:
      for (size_t i = 0; i < values.size(); i += kQk) QuantizeQ8_0Block(&values[i], out);
      break;
    case GgmlType::kQ4_0:
      for (size_t i = 0; i < values.size(); i += kQk) QuantizeQ4_0Block(&values[i], out);
      break;
    case GgmlType::kQ4_1:
      for (size_t i = 0; i < values.size(); i += kQk) QuantizeQ4_1Block(&values[i], out);
      break;
    default:
      return absl::UnimplementedError(
          absl::StrCat("test quantizer does not support ", GgmlTypeName(type)));
  }
  return out;
}

}  // namespace kvserve::testing
