// The CPU kernels against direct, naive formulas on small random tensors (odd sizes included).
#include "engine/runtime/cpu/cpu_ops.h"

#include "engine/kv/sequence_kv_cache.h"
#include "tests/support/random_tensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace kvserve::cpu {
namespace {

using ::kvserve::testing::RandomNormal;

TEST(CpuOpsTest, LinearRowsDoNotDependOnTheirBatch) {
  // Decode batching must not change a sequence's bits: row i of a batch equals row i alone.
  std::mt19937 rng(9);
  ThreadPool pool(2);
  const int m = 8, n = 33, k = 70;
  auto x = RandomNormal(m * k, rng), w = RandomNormal(n * k, rng);
  std::vector<float> all(m * n), one(n);
  Linear(pool, x.data(), w.data(), all.data(), m, n, k);
  for (int i = 0; i < m; ++i) {
    Linear(pool, x.data() + i * k, w.data(), one.data(), 1, n, k);
    for (int j = 0; j < n; ++j) ASSERT_EQ(all[i * n + j], one[j]);
  }
}

TEST(CpuOpsTest, LinearMatchesNaiveForOneAndManyRows) {
  std::mt19937 rng(1);
  ThreadPool pool(2);
  // Both the dot-product path (few rows) and the sgemm path (many rows).
  for (int m : {1, 3, 16, 17, 40}) {
    const int n = 13, k = 29;
    auto x = RandomNormal(m * k, rng), w = RandomNormal(n * k, rng), y = RandomNormal(m * n, rng);
    std::vector<float> expect(m * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double acc = y[i * n + j];
        for (int t = 0; t < k; ++t) acc += double{x[i * k + t]} * w[j * k + t];
        expect[i * n + j] = static_cast<float>(acc);
      }
    Linear(pool, x.data(), w.data(), y.data(), m, n, k, /*accumulate=*/true);
    for (int i = 0; i < m * n; ++i) EXPECT_NEAR(y[i], expect[i], 1e-4) << "m=" << m << " i=" << i;
  }
}

TEST(CpuOpsTest, RmsNormMatchesFormula) {
  std::mt19937 rng(2);
  const int rows = 3, dim = 37;
  auto x = RandomNormal(rows * dim, rng), w = RandomNormal(dim, rng);
  std::vector<float> out(rows * dim);
  ThreadPool pool(2);
  RmsNorm(pool, x.data(), w.data(), out.data(), rows, dim, 1e-5f);
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
    const double scale = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int i = 0; i < dim; ++i) {
      EXPECT_NEAR(out[r * dim + i], x[r * dim + i] * scale * w[i], 1e-5);
    }
  }
}

TEST(CpuOpsTest, RopeRotatesEachStyleByPositionTimesFrequency) {
  std::mt19937 rng(3);
  const int heads = 2, head_dim = 8, rope_dim = 8, stride = heads * head_dim + 3;
  const std::vector<int32_t> positions = {0, 5, 1000};
  const int rows = static_cast<int>(positions.size());
  std::vector<float> cos_t(rows * rope_dim / 2), sin_t(rows * rope_dim / 2);
  RopeTables(positions, rope_dim, 10000.0f, cos_t.data(), sin_t.data());
  for (bool adjacent : {true, false}) {
    auto x = RandomNormal(rows * stride, rng);
    auto y = x;
    ApplyRope(y.data(), rows, stride, heads, head_dim, rope_dim, cos_t.data(), sin_t.data(),
              adjacent);
    for (int r = 0; r < rows; ++r) {
      for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < rope_dim / 2; ++i) {
          const double angle = positions[r] * std::pow(10000.0, -2.0 * i / rope_dim);
          const int a = r * stride + h * head_dim + (adjacent ? 2 * i : i);
          const int b = r * stride + h * head_dim + (adjacent ? 2 * i + 1 : i + rope_dim / 2);
          EXPECT_NEAR(y[a], x[a] * std::cos(angle) - x[b] * std::sin(angle), 1e-4);
          EXPECT_NEAR(y[b], x[a] * std::sin(angle) + x[b] * std::cos(angle), 1e-4);
        }
      }
      // Padding past the heads is untouched.
      for (int i = heads * head_dim; i < stride; ++i)
        EXPECT_EQ(y[r * stride + i], x[r * stride + i]);
    }
  }
}

TEST(CpuOpsTest, SiluMulMatchesFormula) {
  std::mt19937 rng(4);
  const int rows = 2, ffn = 11;
  auto gu = RandomNormal(rows * 2 * ffn, rng);
  std::vector<float> out(rows * ffn);
  ThreadPool pool(2);
  SiluMul(pool, gu.data(), out.data(), rows, ffn);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < ffn; ++i) {
      const float g = gu[r * 2 * ffn + i], u = gu[r * 2 * ffn + ffn + i];
      EXPECT_NEAR(out[r * ffn + i], g / (1 + std::exp(-g)) * u, 1e-6);
    }
}

// Naive causal GQA attention: query i of n sees cache entries [0, cache_len - n + i].
std::vector<float> NaiveAttention(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, int n, int cache_len,
                                  const AttentionShape& s) {
  const int d = s.head_dim, qs = s.n_heads * d, ks = s.n_kv_heads * d;
  std::vector<float> out(n * qs);
  for (int i = 0; i < n; ++i) {
    const int visible = cache_len - n + i + 1;
    for (int h = 0; h < s.n_heads; ++h) {
      const int kh = h / (s.n_heads / s.n_kv_heads);
      std::vector<double> p(visible);
      double max = -1e300, sum = 0;
      for (int j = 0; j < visible; ++j) {
        double dot = 0;
        for (int t = 0; t < d; ++t) dot += double{q[i * qs + h * d + t]} * k[j * ks + kh * d + t];
        p[j] = dot / std::sqrt(double(d));
        max = std::max(max, p[j]);
      }
      for (double& x : p) sum += (x = std::exp(x - max));
      for (int t = 0; t < d; ++t) {
        double acc = 0;
        for (int j = 0; j < visible; ++j) acc += p[j] / sum * v[j * ks + kh * d + t];
        out[i * qs + h * d + t] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

struct AttentionCase {
  int n, cache_len;
  AttentionShape shape;
};

class CausalAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(CausalAttentionTest, MatchesNaiveReference) {
  const auto [n, cache_len, shape] = GetParam();
  std::mt19937 rng(n * 131 + cache_len);
  const int qs = shape.n_heads * shape.head_dim, ks = shape.n_kv_heads * shape.head_dim;
  auto q = RandomNormal(n * qs, rng), k = RandomNormal(cache_len * ks, rng),
       v = RandomNormal(cache_len * ks, rng);
  std::vector<float> out(n * qs), scratch(AttentionScratchFloats(n, cache_len, shape));
  // The head-major cache the backend attends over, filled from token-major projections.
  PagePool pool({shape.n_kv_heads, 32, shape.head_dim}, PagePool::kUnbounded);
  SequenceKvCache cache(pool, 1);
  ASSERT_TRUE(cache.GrowLayer(0, cache_len));
  ASSERT_TRUE(cache.Append(0, k.data(), v.data(), cache_len, ks));
  std::vector<float> head_k(cache_len * shape.head_dim), head_v(cache_len * shape.head_dim);
  for (int kv_head = 0; kv_head < shape.n_kv_heads; ++kv_head) {
    cache.GatherHead(0, kv_head, 0, cache_len, head_k.data(), head_v.data());
    const AttentionInputs in{q.data(), head_k.data(), head_v.data(), out.data(),
                             n,        cache_len,     shape};
    for (int block = 0; block < AttentionQueryBlocks(n); ++block) {
      CausalAttention(in, kv_head, block, scratch.data());
    }
  }
  const auto expect = NaiveAttention(q, k, v, n, cache_len, shape);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], expect[i], 2e-5) << i;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CausalAttentionTest,
    ::testing::Values(AttentionCase{1, 1, {4, 2, 8}},        // first decode token
                      AttentionCase{1, 77, {9, 3, 16}},      // decode, SmolLM2-like grouping
                      AttentionCase{13, 13, {8, 4, 8}},      // whole prefill
                      AttentionCase{5, 40, {6, 1, 12}},      // chunk after 35 cached (MQA)
                      AttentionCase{300, 300, {2, 2, 8}},    // more rows than one query block
                      AttentionCase{130, 200, {4, 2, 4}}));  // blocks straddling the cache start

}  // namespace
}  // namespace kvserve::cpu
