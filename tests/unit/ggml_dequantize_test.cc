#include "engine/model/ggml_dequantize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/model/ggml_type.h"
#include "tests/support/ggml_quantize.h"

namespace kvserve {
namespace {

using ::testing::HasSubstr;

// The IEEE binary16 definition, computed independently of the code under test.
float HalfByDefinition(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exp == 0x1f) return mant == 0 ? sign * INFINITY : NAN;
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -24);
  return sign * std::ldexp(static_cast<float>(1024 + mant), exp - 25);
}

void PutU16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v & 0xff));
  out.push_back(static_cast<uint8_t>(v >> 8));
}

std::vector<float> Dequantize(GgmlType type, const std::vector<uint8_t>& src, size_t n) {
  std::vector<float> out(n, -12345.0f);
  const absl::Status status = DequantizeToF32(type, src, out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

TEST(Fp16ToF32Test, MatchesDefinitionForAllInputs) {
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float expected = HalfByDefinition(h);
    for (float actual : {Fp16ToF32(h), Fp16ToF32Portable(h)}) {
      if (std::isnan(expected)) {
        ASSERT_TRUE(std::isnan(actual)) << std::hex << h;
        ASSERT_EQ(std::signbit(actual), (h & 0x8000) != 0) << std::hex << h;
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(actual), std::bit_cast<uint32_t>(expected))
            << std::hex << h;
      }
    }
  }
}

TEST(Fp16ToF32Test, SpecialValues) {
  for (auto convert : {&Fp16ToF32, &Fp16ToF32Portable}) {
    EXPECT_EQ(std::bit_cast<uint32_t>(convert(0x0000)), 0x00000000u);  // +0
    EXPECT_EQ(std::bit_cast<uint32_t>(convert(0x8000)), 0x80000000u);  // -0
    EXPECT_EQ(convert(0x0001), std::ldexp(1.0f, -24));                 // smallest subnormal
    EXPECT_EQ(convert(0x03ff), std::ldexp(1023.0f, -24));              // largest subnormal
    EXPECT_EQ(convert(0x8200), -std::ldexp(1.0f, -15));                // negative subnormal
    EXPECT_EQ(convert(0x0400), std::ldexp(1.0f, -14));                 // smallest normal
    EXPECT_EQ(convert(0x3c00), 1.0f);
    EXPECT_EQ(convert(0xc000), -2.0f);
    EXPECT_EQ(convert(0x3555), 0.333251953125f);
    EXPECT_EQ(convert(0x7bff), 65504.0f);
    EXPECT_EQ(convert(0x7c00), INFINITY);
    EXPECT_EQ(convert(0xfc00), -INFINITY);
    EXPECT_TRUE(std::isnan(convert(0x7e00)));
    EXPECT_TRUE(std::isnan(convert(0x7c01)));
    EXPECT_TRUE(std::isnan(convert(0xfe00)));
  }
  // Without hardware conversion the NaN payload is kept.
  EXPECT_EQ(std::bit_cast<uint32_t>(Fp16ToF32Portable(0x7c01)), 0x7f802000u);
}

TEST(DequantizeTest, F32CopiesBytes) {
  const std::vector<float> values = {1.5f, -0.0f, INFINITY, 3.25e-40f};
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  const std::vector<float> out = Dequantize(GgmlType::kF32, bytes, values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(values[i])) << i;
  }
}

TEST(DequantizeTest, F16VectorAndTailPaths) {
  // 19 elements: two 8-wide vector steps and a scalar tail of 3.
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x0001, 0x8000, 0x7bff, 0x7c00, 0xfc00,
                                        0x3555, 0x0400, 0x03ff, 0x4248, 0x5640, 0x1234, 0xabcd,
                                        0x3800, 0xb800, 0x4900, 0x0000, 0xfbff};
  std::vector<uint8_t> bytes;
  for (uint16_t h : halves) PutU16(bytes, h);
  const std::vector<float> out = Dequantize(GgmlType::kF16, bytes, halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(HalfByDefinition(halves[i])))
        << i;
  }
}

TEST(DequantizeTest, F16NanStaysNan) {
  std::vector<uint8_t> bytes;
  PutU16(bytes, 0x7e00);
  EXPECT_TRUE(std::isnan(Dequantize(GgmlType::kF16, bytes, 1)[0]));
}

TEST(DequantizeTest, Bf16) {
  const std::vector<uint16_t> halves = {0x3f80, 0xc040, 0x7f80, 0xff80, 0x8000, 0x0001, 0x4049};
  std::vector<uint8_t> bytes;
  for (uint16_t h : halves) PutU16(bytes, h);
  bytes.push_back(0xc0);  // NaN 0x7fc0, little endian
  bytes.push_back(0x7f);
  const std::vector<float> out = Dequantize(GgmlType::kBF16, bytes, halves.size() + 1);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  EXPECT_EQ(out[2], INFINITY);
  EXPECT_EQ(out[3], -INFINITY);
  EXPECT_EQ(std::bit_cast<uint32_t>(out[4]), 0x80000000u);
  EXPECT_EQ(out[5], std::ldexp(1.0f, -133));  // float subnormal
  EXPECT_EQ(out[6], 3.140625f);
  EXPECT_TRUE(std::isnan(out[7]));
}

TEST(DequantizeTest, Q8_0HandBuiltBlocks) {
  std::vector<uint8_t> bytes;
  PutU16(bytes, 0x3800);  // d = 0.5
  for (int j = 0; j < 32; ++j) bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(j - 16)));
  PutU16(bytes, 0xbc00);  // d = -1
  for (int j = 0; j < 32; ++j) {
    const int8_t q = j == 0 ? 127 : j == 1 ? -128 : static_cast<int8_t>(3 * j - 50);
    bytes.push_back(static_cast<uint8_t>(q));
  }
  ASSERT_EQ(bytes.size(), 68u);
  const std::vector<float> out = Dequantize(GgmlType::kQ8_0, bytes, 64);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.5f * static_cast<float>(j - 16)) << j;
  EXPECT_EQ(out[32], -127.0f);
  EXPECT_EQ(out[33], 128.0f);
  for (int j = 2; j < 32; ++j) EXPECT_EQ(out[32 + j], -static_cast<float>(3 * j - 50)) << j;
}

TEST(DequantizeTest, Q4_0HandBuiltBlock) {
  std::vector<uint8_t> bytes;
  PutU16(bytes, 0x4000);  // d = 2
  // Byte j: low nibble j (element j), high nibble 15 - j (element 16 + j).
  for (int j = 0; j < 16; ++j) bytes.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(bytes.size(), 18u);
  const std::vector<float> out = Dequantize(GgmlType::kQ4_0, bytes, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(out[16 + j], 2.0f * static_cast<float>(15 - j - 8)) << j;
  }
}

TEST(DequantizeTest, Q4_1HandBuiltBlock) {
  std::vector<uint8_t> bytes;
  PutU16(bytes, 0x3400);  // d = 0.25
  PutU16(bytes, 0xc500);  // m = -5
  for (int j = 0; j < 16; ++j) bytes.push_back(static_cast<uint8_t>(j | (((7 * j) % 16) << 4)));
  ASSERT_EQ(bytes.size(), 20u);
  const std::vector<float> out = Dequantize(GgmlType::kQ4_1, bytes, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.25f * static_cast<float>(j) - 5.0f) << j;
    EXPECT_EQ(out[16 + j], 0.25f * static_cast<float>((7 * j) % 16) - 5.0f) << j;
  }
}

// Many blocks of random bytes (with finite scales) against the per-element formulas.
TEST(DequantizeTest, BlockTypesMatchFormulasOnRandomBlocks) {
  std::mt19937 rng(7);
  const size_t n_blocks = 257;
  auto random_scale = [&] {
    return static_cast<uint16_t>(rng() % 0x7c00 | (rng() % 2 ? 0x8000 : 0));  // finite
  };
  auto u16 = [](const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); };
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1}) {
    SCOPED_TRACE(GgmlTypeName(type));
    const size_t block_bytes = GgmlLayout(type)->block_bytes;
    const size_t scales = type == GgmlType::kQ4_1 ? 2 : 1;
    std::vector<uint8_t> bytes;
    for (size_t b = 0; b < n_blocks; ++b) {
      for (size_t s = 0; s < scales; ++s) PutU16(bytes, random_scale());
      for (size_t j = 2 * scales; j < block_bytes; ++j) bytes.push_back(rng() & 0xff);
    }
    const std::vector<float> out = Dequantize(type, bytes, n_blocks * 32);
    for (size_t b = 0; b < n_blocks; ++b) {
      const uint8_t* block = bytes.data() + b * block_bytes;
      const float d = HalfByDefinition(u16(block));
      for (size_t j = 0; j < 32; ++j) {
        float expected;
        if (type == GgmlType::kQ8_0) {
          expected = d * static_cast<float>(static_cast<int8_t>(block[2 + j]));
        } else {
          const uint8_t byte = block[2 * scales + j % 16];
          const int nibble = j < 16 ? byte & 0x0f : byte >> 4;
          expected = type == GgmlType::kQ4_0
                         ? d * static_cast<float>(nibble - 8)
                         : d * static_cast<float>(nibble) + HalfByDefinition(u16(block + 2));
        }
        ASSERT_EQ(out[b * 32 + j], expected) << "block " << b << " element " << j;
      }
    }
  }
}

TEST(DequantizeTest, SizeMismatchIsInvalidArgument) {
  std::vector<float> out(32);
  std::vector<uint8_t> bytes(19);
  absl::Status status = DequantizeToF32(GgmlType::kQ4_1, bytes, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("take 20 bytes, got 19"));

  std::vector<float> odd(33);
  bytes.assign(40, 0);
  status = DequantizeToF32(GgmlType::kQ4_0, bytes, odd);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("32-element blocks"));

  std::vector<float> three(3);
  bytes.assign(8, 0);
  EXPECT_EQ(DequantizeToF32(GgmlType::kF32, bytes, three).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeToF32(GgmlType::kF16, bytes, three).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DequantizeToF32(GgmlType::kF16, {}, {}).ok());
}

TEST(DequantizeTest, UnsupportedTypeIsNamed) {
  std::vector<float> out(32);
  std::vector<uint8_t> bytes(22);
  absl::Status status = DequantizeToF32(GgmlType::kQ5_0, bytes, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("Q5_0"));
  status = DequantizeToF32(static_cast<GgmlType>(99), bytes, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("type#99"));
  EXPECT_TRUE(CanDequantize(GgmlType::kQ6_K));
  EXPECT_FALSE(CanDequantize(GgmlType::kQ5_0));
  EXPECT_TRUE(CanDequantize(GgmlType::kBF16));
}

TEST(GgmlTypeTest, NamesAndLayouts) {
  EXPECT_EQ(GgmlTypeName(GgmlType::kQ4_1), "Q4_1");
  EXPECT_EQ(GgmlTypeName(GgmlType::kBF16), "BF16");
  EXPECT_EQ(GgmlTypeName(GgmlType::kQ6_K), "Q6_K");
  EXPECT_EQ(GgmlTypeName(static_cast<GgmlType>(31)), "type#31");
  EXPECT_EQ(GgmlLayout(GgmlType::kQ8_0)->block_bytes, 34u);
  EXPECT_EQ(GgmlLayout(GgmlType::kQ4_0)->block_size, 32u);
  EXPECT_EQ(GgmlLayout(GgmlType::kBF16)->block_bytes, 2u);
  EXPECT_EQ(GgmlLayout(GgmlType::kQ8_1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GgmlLayout(static_cast<GgmlType>(1000)).status().code(), absl::StatusCode::kNotFound);
}

TEST(GgmlTypeTest, RowBytes) {
  EXPECT_EQ(*RowBytes(GgmlType::kF32, 10), 40u);
  EXPECT_EQ(*RowBytes(GgmlType::kF16, 3), 6u);
  EXPECT_EQ(*RowBytes(GgmlType::kQ4_1, 64), 40u);
  EXPECT_EQ(*RowBytes(GgmlType::kQ8_0, 576), 18u * 34u);
  EXPECT_EQ(*RowBytes(GgmlType::kQ4_0, 0), 0u);
  EXPECT_EQ(RowBytes(GgmlType::kQ4_1, 33).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(RowBytes(GgmlType::kF32, uint64_t{1} << 62).status().message(),
              HasSubstr("overflow"));
  EXPECT_EQ(RowBytes(static_cast<GgmlType>(99), 32).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The test-only encoders used to build GGUF fixtures.
TEST(TestQuantizerTest, HalfEncodersInvertDecoders) {
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const auto h = static_cast<uint16_t>(i);
    if (!std::isnan(HalfByDefinition(h))) {
      ASSERT_EQ(testing::F32ToF16Bits(Fp16ToF32(h)), h) << std::hex << h;
    }
    if (!std::isnan(Bf16ToF32(h))) {
      ASSERT_EQ(testing::F32ToBf16Bits(Bf16ToF32(h)), h) << std::hex << h;
    }
  }
  EXPECT_EQ(testing::F32ToF16Bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(testing::F32ToF16Bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(testing::F32ToF16Bits(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(testing::F32ToF16Bits(NAN), 0x7e00);
  EXPECT_EQ(testing::F32ToBf16Bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
}

TEST(TestQuantizerTest, QuantizeThenDequantizeIsClose) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(32 * 40);
  for (float& v : values) v = normal(rng);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                        GgmlType::kQ4_0, GgmlType::kQ4_1}) {
    SCOPED_TRACE(GgmlTypeName(type));
    absl::StatusOr<std::vector<uint8_t>> bytes = testing::QuantizeFromF32(type, values);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    const std::vector<float> out = Dequantize(type, *bytes, values.size());
    for (size_t b = 0; b < values.size(); b += 32) {
      float lo = values[b], hi = values[b];
      for (size_t j = b; j < b + 32; ++j)
        lo = std::min(lo, values[j]), hi = std::max(hi, values[j]);
      const float amax = std::max(std::fabs(lo), std::fabs(hi));
      const float tolerance = type == GgmlType::kQ8_0   ? amax / 127.0f
                              : type == GgmlType::kQ4_0 ? amax / 8.0f * 1.01f
                              : type == GgmlType::kQ4_1 ? (hi - lo) / 15.0f
                                                        : amax / 128.0f;
      for (size_t j = b; j < b + 32; ++j) ASSERT_NEAR(out[j], values[j], tolerance) << j;
    }
  }
  EXPECT_EQ(testing::QuantizeFromF32(GgmlType::kQ5_0, values).status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kvserve
