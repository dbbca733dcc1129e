#include "engine/model/ggml_dequantize.h"

#include <bit>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dequantize_rows.h"

namespace kvserve {
namespace {

static_assert(std::endian::native == std::endian::little, "ggml data is little endian");

constexpr size_t kQk = 32;  // elements per Q8_0 / Q4_0 / Q4_1 block

// The 4-bit kernels copy a block's quants to a local array: that tells the compiler they cannot
// alias `dst`, which lets it vectorize the fully unrolled block (4 x 8-wide FMAs for Q4_1).

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

void DequantizeF16(const uint8_t* src, float* dst, size_t n) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) dst[i] = Fp16ToF32(LoadU16(src + 2 * i));
}

void DequantizeBf16(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(LoadU16(src + 2 * i));
}

// Block: fp16 d, 32 x int8 q; x = d * q.
void DequantizeQ8_0(const uint8_t* src, float* dst, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, src += 34, dst += kQk) {
    const float d = Fp16ToF32(LoadU16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (size_t j = 0; j < kQk; ++j) dst[j] = d * static_cast<float>(q[j]);
  }
}

// Block: fp16 d, 16 bytes; low nibbles are elements 0..15, high nibbles 16..31; x = d * (q - 8).
void DequantizeQ4_0(const uint8_t* src, float* dst, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, src += 18, dst += kQk) {
    const float d = Fp16ToF32(LoadU16(src));
    uint8_t q[kQk / 2];
    std::memcpy(q, src + 2, sizeof(q));
    for (size_t j = 0; j < kQk / 2; ++j) {
      dst[j] = d * static_cast<float>((q[j] & 0x0f) - 8);
      dst[j + kQk / 2] = d * static_cast<float>((q[j] >> 4) - 8);
    }
  }
}

// Block: fp16 d, fp16 m, 16 bytes in Q4_0's nibble order; x = d * q + m.
void DequantizeQ4_1(const uint8_t* src, float* dst, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, src += 20, dst += kQk) {
    const float d = Fp16ToF32(LoadU16(src));
    const float m = Fp16ToF32(LoadU16(src + 2));
    uint8_t q[kQk / 2];
    std::memcpy(q, src + 4, sizeof(q));
    for (size_t j = 0; j < kQk / 2; ++j) {
      dst[j] = d * static_cast<float>(q[j] & 0x0f) + m;
      dst[j + kQk / 2] = d * static_cast<float>(q[j] >> 4) + m;
    }
  }
}

}  // namespace

bool CanDequantize(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

absl::Status DequantizeToF32(GgmlType type, std::span<const uint8_t> src, std::span<float> dst) {
  if (!CanDequantize(type)) {
    return absl::UnimplementedError(
        absl::StrCat("dequantize: unsupported tensor type ", GgmlTypeName(type)));
  }
  absl::StatusOr<uint64_t> expected = RowBytes(type, dst.size());
  if (!expected.ok())
    return absl::InvalidArgumentError(absl::StrCat("dequantize: ", expected.status().message()));
  if (*expected != src.size()) {
    return absl::InvalidArgumentError(absl::StrCat("dequantize: ", dst.size(), " elements of ",
                                                   GgmlTypeName(type), " take ", *expected,
                                                   " bytes, got ", src.size()));
  }
  const uint8_t* in = src.data();
  float* out = dst.data();
  const size_t n = dst.size();
  switch (type) {
    case GgmlType::kF32:
      if (n != 0) std::memcpy(out, in, n * sizeof(float));
      break;
    case GgmlType::kF16:
      DequantizeF16(in, out, n);
      break;
    case GgmlType::kBF16:
      DequantizeBf16(in, out, n);
      break;
    case GgmlType::kQ8_0:
      DequantizeQ8_0(in, out, n / kQk);
      break;
    case GgmlType::kQ4_0:
      DequantizeQ4_0(in, out, n / kQk);
      break;
    case GgmlType::kQ4_1:
      DequantizeQ4_1(in, out, n / kQk);
      break;
    case GgmlType::kQ4_K:
      kernels::cpu::DequantizeRow(kernels::cpu::WeightFormat::kQ4_K, in, out, n);
      break;
    case GgmlType::kQ5_K:
      kernels::cpu::DequantizeRow(kernels::cpu::WeightFormat::kQ5_K, in, out, n);
      break;
    case GgmlType::kQ6_K:
      kernels::cpu::DequantizeRow(kernels::cpu::WeightFormat::kQ6_K, in, out, n);
      break;
    default:
      break;  // rejected by CanDequantize above
  }
  return absl::OkStatus();
}

}  // namespace kvserve
