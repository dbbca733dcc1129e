// The CPU weight kernels (kernels/cpu): every ISA's dot kernels against the portable scalar twin,
// the scalar twin against fp32 arithmetic on the decoded weights and activations, and the row
// (de)quantizers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dequantize_rows.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/q8_activations.h"
#include "kernels/cpu/quantize_rows.h"
#include "kernels/cpu/vec_dot.h"

namespace kvserve::kernels::cpu {
namespace {

constexpr WeightFormat kAllFormats[] = {
    WeightFormat::kF32,  WeightFormat::kF16,  WeightFormat::kBF16,
    WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kQ4_1,
    WeightFormat::kQ4_K, WeightFormat::kQ5_K, WeightFormat::kQ6_K};

std::vector<float> RandomFloats(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// `rows` random rows of `format`: encoded from random floats where QuantizeRow can, else random
// bytes with the super-block scales (the fp16 d / dmin fields) set to sane values.
std::vector<uint8_t> RandomMatrix(std::mt19937& rng, WeightFormat format, int64_t rows, int64_t k) {
  const size_t row_bytes = RowBytesOf(format, k);
  std::vector<uint8_t> out(rows * row_bytes);
  if (CanQuantizeTo(format)) {
    const std::vector<float> values = RandomFloats(rng, rows * k, 0.05f);
    for (int64_t r = 0; r < rows; ++r)
      QuantizeRow(format, values.data() + r * k, out.data() + r * row_bytes, k);
    return out;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
  const FormatLayout layout = LayoutOf(format);
  std::uniform_real_distribution<float> scale(0.0005f, 0.002f);
  auto put_half = [](uint8_t* p, float v) {
    const uint16_t h = FloatToHalf(v);
    std::memcpy(p, &h, sizeof(h));
  };
  for (size_t at = 0; at < out.size(); at += layout.block_bytes) {
    if (format == WeightFormat::kQ6_K) {
      put_half(&out[at + 208], scale(rng));
    } else {  // Q4_K, Q5_K: d, dmin
      put_half(&out[at], scale(rng));
      put_half(&out[at + 2], scale(rng));
    }
  }
  return out;
}

struct Case {
  WeightFormat format;
  std::vector<uint8_t> w;
  std::vector<float> x;
  std::vector<Q8Block> xq;
  int64_t rows, k;
  int m;
};

Case MakeCase(std::mt19937& rng, WeightFormat format, int64_t rows, int64_t k, int m) {
  Case c{format, RandomMatrix(rng, format, rows, k), RandomFloats(rng, m * k, 1.0f), {}, rows, k,
         m};
  c.xq.resize(m * k / kQ8BlockSize);
  for (int i = 0; i < m; ++i)
    QuantizeToQ8(c.x.data() + i * k, k, c.xq.data() + i * (k / kQ8BlockSize));
  return c;
}

std::vector<float> RunKernels(const DotKernelTable& table, const Case& c, bool accumulate,
                              float initial) {
  std::vector<float> y(c.m * c.rows, initial);
  const MatVecArgs args{.format = c.format,
                        .w = c.w.data(),
                        .row_bytes = RowBytesOf(c.format, c.k),
                        .k = c.k,
                        .x = c.x.data(),
                        .xq = c.xq.data(),
                        .m = c.m,
                        .y = y.data(),
                        .ldy = c.rows,
                        .accumulate = accumulate};
  // Two ranges, as the pool splits them.
  DotRows(table, args, 0, c.rows / 2);
  DotRows(table, args, c.rows / 2, c.rows);
  return y;
}

// fp32 arithmetic on decoded weights and the activations the kernel sees (d * (256 q + r) for the
// block-quantized formats, x itself otherwise), accumulated in double.
std::vector<float> Reference(const Case& c) {
  std::vector<float> wrow(c.k), y(c.m * c.rows);
  const size_t row_bytes = RowBytesOf(c.format, c.k);
  for (int64_t j = 0; j < c.rows; ++j) {
    DequantizeRow(c.format, c.w.data() + j * row_bytes, wrow.data(), c.k);
    for (int i = 0; i < c.m; ++i) {
      double sum = 0;
      for (int64_t t = 0; t < c.k; ++t) {
        const Q8Block& b = c.xq[(i * c.k + t) / kQ8BlockSize];
        const double x =
            UsesQ8Activations(c.format)
                ? static_cast<double>(b.d) * (256 * b.q[t % kQ8BlockSize] + b.r[t % kQ8BlockSize])
                : c.x[i * c.k + t];
        sum += x * wrow[t];
      }
      y[i * c.rows + j] = static_cast<float>(sum);
    }
  }
  return y;
}

// Tolerance relative to the largest output: differences come only from fp32 summation order.
void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float rel,
                const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  float scale = 1e-6f;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], rel * scale) << what << " at " << i;
  }
}

TEST(CpuDotKernelsTest, ScalarTwinMatchesDecodedArithmetic) {
  std::mt19937 rng(7);
  for (WeightFormat f : kAllFormats) {
    const Case c = MakeCase(rng, f, 24, 512, 3);
    ExpectNear(RunKernels(KernelTable(Isa::kScalar), c, false, 0.0f), Reference(c), 1e-4f,
               FormatName(f));
  }
}

TEST(CpuDotKernelsTest, EverySupportedIsaMatchesTheScalarTwin) {
  int checked = 0;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!IsaSupported(isa)) continue;
    ++checked;
    std::mt19937 rng(11);
    for (WeightFormat f : kAllFormats) {
      for (int m : {1, 5}) {
        const Case c = MakeCase(rng, f, 37, 768, m);
        const std::string what = std::string(IsaName(isa)) + " " + FormatName(f);
        ExpectNear(RunKernels(KernelTable(isa), c, false, 0.0f),
                   RunKernels(KernelTable(Isa::kScalar), c, false, 0.0f), 1e-5f, what);
        ExpectNear(RunKernels(KernelTable(isa), c, true, 0.5f),
                   RunKernels(KernelTable(Isa::kScalar), c, true, 0.5f), 1e-5f,
                   what + " accumulate");
      }
    }
  }
  if (checked == 0) GTEST_SKIP() << "this CPU has no SIMD ISA the kernels target";
}

// A decode row alone (m = 1: the two-row kernels) and the same row inside a batch (m = 3: one
// weight row at a time) give the same bits, so a sequence's logits do not depend on its batch.
TEST(CpuDotKernelsTest, OneRowAloneEqualsTheSameRowInABatch) {
  std::mt19937 rng(17);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!IsaSupported(isa)) continue;
    for (WeightFormat f : kAllFormats) {
      Case batch = MakeCase(rng, f, 21, 256, 3);
      Case alone = batch;
      alone.m = 1;
      const std::vector<float> a = RunKernels(KernelTable(isa), alone, false, 0.0f);
      const std::vector<float> b = RunKernels(KernelTable(isa), batch, false, 0.0f);
      for (int64_t j = 0; j < batch.rows; ++j)
        ASSERT_EQ(a[j], b[j]) << IsaName(isa) << " " << FormatName(f) << " row " << j;
    }
  }
}

TEST(CpuDotKernelsTest, SelectedIsaIsSupported) {
  EXPECT_TRUE(IsaSupported(SelectedIsa()));
  EXPECT_EQ(KernelTable(SelectedIsa()).isa, SelectedIsa());
}

TEST(CpuDotKernelsTest, QuantizedRowsDecodeCloseToTheirSource) {
  std::mt19937 rng(3);
  const std::vector<float> x = RandomFloats(rng, 256, 1.0f);
  // Worst-case step of each format relative to the block's range.
  const std::pair<WeightFormat, float> bounds[] = {
      {WeightFormat::kF32, 0.0f},      {WeightFormat::kF16, 1e-3f},
      {WeightFormat::kBF16, 8e-3f},    {WeightFormat::kQ8_0, 1.0f / 127},
      {WeightFormat::kQ4_0, 1.0f / 8}, {WeightFormat::kQ4_1, 1.0f / 15}};
  for (auto [f, bound] : bounds) {
    std::vector<uint8_t> bytes(RowBytesOf(f, 256));
    std::vector<float> back(256);
    QuantizeRow(f, x.data(), bytes.data(), 256);
    DequantizeRow(f, bytes.data(), back.data(), 256);
    for (int b = 0; b < 8; ++b) {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
      for (int j = 0; j < 32; ++j) {
        const int i = 32 * b + j;
        EXPECT_NEAR(back[i], x[i], bound * amax * 1.01f + 1e-7f) << FormatName(f) << " at " << i;
      }
    }
    // Re-encoding a decoded row reproduces it: the loader's requantization is stable.
    std::vector<uint8_t> again(bytes.size());
    QuantizeRow(f, back.data(), again.data(), 256);
    if (f == WeightFormat::kQ8_0 || f == WeightFormat::kF16 || f == WeightFormat::kBF16) {
      EXPECT_EQ(again, bytes) << FormatName(f);
    }
  }
}

TEST(CpuDotKernelsTest, HalfConversionsRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 4096), 0x3c00);  // ties round to even
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(3.140625f)), 3.140625f);
}

TEST(CpuDotKernelsTest, Q8ActivationsCarryScaleAndSum) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 20) * 0.1f + 0.013f * (i % 7);
  std::vector<Q8Block> q(2);
  QuantizeToQ8(x.data(), 64, q.data());
  for (int b = 0; b < 2; ++b) {
    int sum = 0;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    for (int j = 0; j < 32; ++j) {
      const int v = 256 * q[b].q[j] + q[b].r[j];
      sum += v;
      // Two planes: within half a step of 1/256 of the coarse step (amax / 127).
      EXPECT_NEAR(q[b].d * v, x[32 * b + j], amax / 127 / 256 * 0.51f) << b << " " << j;
    }
    EXPECT_FLOAT_EQ(q[b].sum, q[b].d * static_cast<float>(sum));
  }
  EXPECT_EQ(std::max<int>(q[1].q[31], -q[1].q[0]), 127);
}

}  // namespace
}  // namespace kvserve::kernels::cpu
