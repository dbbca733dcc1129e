// KV stored in fp16 / bf16 (--kv-dtype): the row conversions, a cache in a half-precision pool,
// decode attention over its rows in place, recall between tiers of different types, and the flag.
#include "engine/kv/kv_dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/kv/budget_cache.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/runtime/cpu/cpu_ops.h"
#include "engine/runtime/loaded_engine.h"
#include "kernels/cpu/half.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

using ::kvserve::testing::RandomNormal;

// What one element of `t` keeps of `x`: the scalar conversions of kernels/cpu/half.h.
float Rounded(float x, KvDtype t) {
  switch (t) {
    case KvDtype::kF32:
      return x;
    case KvDtype::kF16:
      return kernels::cpu::HalfToFloat(kernels::cpu::FloatToHalf(x));
    case KvDtype::kBf16:
      return kernels::cpu::Bf16ToFloat(kernels::cpu::FloatToBf16(x));
  }
  return x;
}

TEST(KvDtypeTest, ParsesItsNamesAndRejectsOthersNamingTheFlag) {
  for (const KvDtype t : {KvDtype::kF32, KvDtype::kF16, KvDtype::kBf16}) {
    auto parsed = ParseKvDtype(KvDtypeName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(KvDtypeBytes(KvDtype::kF32), 4u);
  EXPECT_EQ(KvDtypeBytes(KvDtype::kF16), 2u);
  EXPECT_EQ(KvDtypeBytes(KvDtype::kBf16), 2u);
  const auto bad = ParseKvDtype("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--kv-dtype"), std::string_view::npos);
  EXPECT_NE(bad.status().message().find("fp8"), std::string_view::npos);
}

class KvRowTest : public ::testing::TestWithParam<KvDtype> {};

// The vector body and the scalar tail round alike (19 = two vectors and a tail of 3), and the
// round trip loses no more than the type's precision.
TEST_P(KvRowTest, RoundTripsAsTheScalarConversionsDo) {
  const KvDtype t = GetParam();
  std::mt19937 rng(7);
  std::vector<float> x = RandomNormal(19, rng);
  x[0] = 0.0f;
  x[1] = -3.0e-6f;  // an fp16 subnormal
  x[2] = 1000.5f;
  std::vector<std::byte> stored(x.size() * KvDtypeBytes(t));
  StoreKvRow(x.data(), static_cast<int>(x.size()), t, stored.data());
  std::vector<float> back(x.size());
  LoadKvRow(stored.data(), static_cast<int>(x.size()), t, back.data());
  const double rel = t == KvDtype::kF32 ? 0 : t == KvDtype::kF16 ? 1.0 / 2048 : 1.0 / 256;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(back[i], Rounded(x[i], t)) << i;
    EXPECT_LE(std::abs(back[i] - x[i]), rel * std::abs(x[i]) + 1e-7) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KvRowTest,
                         ::testing::Values(KvDtype::kF32, KvDtype::kF16, KvDtype::kBf16),
                         [](const auto& info) { return std::string(KvDtypeName(info.param)); });

constexpr KvPageShape kShape{.n_kv_heads = 2, .page_size = 4, .head_dim = 8};

// Token-major rows of both heads, as the fused projections write them.
struct Rows {
  std::vector<float> k, v;
};
constexpr int kStride = kShape.n_kv_heads * kShape.head_dim;

// A one-layer cache in a pool of `t` holding `n` random rows (drawn from `seed`), and the rows.
struct FilledCache {
  FilledCache(KvDtype t, int n, int seed) : pool(kShape, PagePool::kUnbounded, t), cache(pool, 1) {
    std::mt19937 rng(seed);
    rows = {RandomNormal(n * kStride, rng), RandomNormal(n * kStride, rng)};
    EXPECT_TRUE(cache.GrowLayer(0, n));
    EXPECT_TRUE(cache.Append(0, rows.k.data(), rows.v.data(), n, kStride));
  }
  PagePool pool;
  SequenceKvCache cache;
  Rows rows;
};

TEST(HalfKvCacheTest, HoldsRowsRoundedInHalfTheBytesAndRetainsThem) {
  const int n = 10, stride = kStride, d = kShape.head_dim;
  FilledCache f16(KvDtype::kF16, n, 3), f32(KvDtype::kF32, n, 3);
  SequenceKvCache& cache = f16.cache;
  const Rows& rows = f16.rows;
  EXPECT_EQ(cache.dtype(), KvDtype::kF16);
  EXPECT_EQ(cache.row_bytes(), d * 2u);
  EXPECT_EQ(cache.bytes_used() * 2, f32.cache.bytes_used());
  std::vector<float> k(n * d), v(n * d);
  for (int h = 0; h < kShape.n_kv_heads; ++h) {
    cache.GatherHead(0, h, 0, n, k.data(), v.data());
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < d; ++c) {
        EXPECT_EQ(k[i * d + c], Rounded(rows.k[i * stride + h * d + c], KvDtype::kF16));
        EXPECT_EQ(v[i * d + c], Rounded(rows.v[i * stride + h * d + c], KvDtype::kF16));
      }
  }
  // Each head keeps its own rows, moved to the front in the order given.
  cache.Retain(0, {{9, 2, 5}, {0, 1, 8}});
  EXPECT_EQ(cache.length(0), 3);
  cache.GatherHead(0, 1, 0, 3, k.data(), v.data());
  const int kept[] = {0, 1, 8};
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < d; ++c) {
      EXPECT_EQ(k[i * d + c], Rounded(rows.k[kept[i] * stride + d + c], KvDtype::kF16));
    }
}

// Decode attention reads half-precision rows where they lie and converts them on the way: the
// same result as over the rounded rows gathered to fp32.
TEST(HalfKvCacheTest, DecodeAttentionOverStoredRowsEqualsItOverGatheredRows) {
  const cpu::AttentionShape shape{.n_heads = 6, .n_kv_heads = 2, .head_dim = 8};
  for (const KvDtype t : {KvDtype::kF16, KvDtype::kBf16}) {
    const int n = 71, d = kShape.head_dim;
    FilledCache filled(t, n, 11);
    const SequenceKvCache& cache = filled.cache;
    std::mt19937 rng(12);
    const std::vector<float> q = RandomNormal(shape.n_heads * d, rng);
    std::vector<float> in_place(q.size()), gathered(q.size());
    std::vector<float> scratch(cpu::AttentionScratchFloats(1, n, shape));
    std::vector<float> k(n * d), v(n * d);
    for (int h = 0; h < kShape.n_kv_heads; ++h) {
      std::vector<KvRowSpan> spans;
      cache.HeadSpans(0, h, 0, n, &spans);
      ASSERT_EQ(spans.size(), 18u);  // pages of 4 rows
      EXPECT_EQ(spans[0].dtype, t);
      cpu::AttentionInputs in{.q = q.data(),
                              .keys = nullptr,
                              .values = nullptr,
                              .out = in_place.data(),
                              .n = 1,
                              .cache_len = n,
                              .shape = shape};
      cpu::DirectAttention(in, spans, h, scratch.data());
      cache.GatherHead(0, h, 0, n, k.data(), v.data());
      in.keys = k.data();
      in.values = v.data();
      in.out = gathered.data();
      cpu::CausalAttention(in, h, 0, scratch.data());
    }
    EXPECT_EQ(in_place, gathered) << KvDtypeName(t);
  }
}

// A tiered policy's own fp32 budget recalls from an fp16 host cache: rows convert on the way.
TEST(HalfKvCacheTest, RecallConvertsBetweenTiersOfDifferentTypes) {
  const int stride = kStride, d = kShape.head_dim;
  FilledCache filled(KvDtype::kF16, 8, 5);
  const SequenceKvCache& host = filled.cache;
  const Rows& rows = filled.rows;
  PagePool device_pool(kShape, 8);
  BudgetCache budget(device_pool, 1, {.slots = 2, .sink = 0, .window = 0});
  ASSERT_TRUE(budget.Allocate());
  EXPECT_EQ(budget.bytes_per_chunk(), 2u * kShape.page_size * d * sizeof(float));
  budget.Recall(host, 0, /*page=*/1, /*kv_head=*/1, /*slot=*/0, 0, kShape.page_size);
  for (int r = 0; r < kShape.page_size; ++r)
    for (int c = 0; c < d; ++c) {
      const int at = (4 + r) * stride + d + c;
      EXPECT_EQ(budget.key_row(0, 0, r, 1)[c], Rounded(rows.k[at], KvDtype::kF16));
      EXPECT_EQ(budget.value_row(0, 0, r, 1)[c], Rounded(rows.v[at], KvDtype::kF16));
    }
}

TEST(KvDtypeFlagTest, TheCpuBackendStoresWhatItIsToldAndLoadEngineNamesABadFlag) {
  testing::CpuModel m = testing::LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EXPECT_EQ(m.backend->kv_dtype(), KvDtype::kF16);  // the CPU's default
  EXPECT_EQ(m.backend->kv_element_bytes(), 2u);
  ASSERT_TRUE(ApplyKvDtype(*m.backend, "f32").ok());
  EXPECT_EQ(m.backend->kv_dtype(), KvDtype::kF32);
  EXPECT_EQ(m.backend->kv_host_element_bytes(), 4u);
  ASSERT_TRUE(ApplyKvDtype(*m.backend, "").ok());  // empty: unchanged
  EXPECT_EQ(m.backend->kv_dtype(), KvDtype::kF32);
  const absl::Status bad = ApplyKvDtype(*m.backend, "int4");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--kv-dtype"), std::string_view::npos);

  auto loaded = LoadEngine({.model = "synthetic:stories260k"}, "cpu", 1, 0.9, "bf16");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->backend->kv_dtype(), KvDtype::kBf16);
  auto rejected = LoadEngine({.model = "synthetic:stories260k"}, "cpu", 1, 0.9, "f8");
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("--kv-dtype"), std::string_view::npos);
}

}  // namespace
}  // namespace kvserve
