// The CPU backend's linear layers on stored weights (engine/runtime/cpu/linear_weights.h): fused
// parts of different formats, decode-sized batches through the int8 dot kernels and prefill-sized
// ones through fp32 panels, split across a two-thread pool, against fp64 arithmetic on the decoded
// weights.
#include "engine/runtime/cpu/linear_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/model/model_loader.h"
#include "engine/model/weights_dtype.h"
#include "engine/runtime/cpu/cpu_backend.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::cpu {
namespace {

std::vector<float> Random(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(LinearWeightsTest, FusedMixedFormatsMatchDecodedArithmetic) {
  std::mt19937 rng(5);
  const int64_t k = 320;
  // Q8_0 and Q4_1 parts with an F16 one between them, and two adjacent Q4_1 parts that merge.
  const std::pair<GgmlType, int64_t> parts[] = {
      {GgmlType::kQ8_0, 40}, {GgmlType::kF16, 24}, {GgmlType::kQ4_1, 33}, {GgmlType::kQ4_1, 7}};
  std::vector<LinearWeights::Source> sources;
  std::vector<float> decoded;  // [n][k]
  for (auto [type, rows] : parts) {
    auto m = QuantizeMatrix(Random(rng, rows * k, 0.05f), rows, k, type, "test");
    ASSERT_TRUE(m.ok()) << m.status();
    const std::vector<float> back = DequantizeMatrix(*m);
    decoded.insert(decoded.end(), back.begin(), back.end());
    sources.push_back(*std::move(m));
  }
  const LinearWeights w(std::move(sources));
  const int64_t n = w.rows();
  ASSERT_EQ(n, 104);
  ThreadPool pool(2);
  // The default crossover (dot kernels for 1 and 5 rows, fp32 panels for 40), and each path forced
  // for every row count, as kvserve-linear-bench runs them.
  for (const int dot_rows_max : {LinearRunner::kDefaultDotRowsMax, 0, 1 << 20}) {
    LinearRunner runner(pool, dot_rows_max);
    for (int m : {1, 5, 40}) {
      const std::vector<float> x = Random(rng, m * k, 1.0f);
      std::vector<float> y(m * n, 0.25f);
      runner.Run(x.data(), w, y.data(), m, /*accumulate=*/true);
      for (int i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0.25;
          for (int64_t t = 0; t < k; ++t)
            ref += static_cast<double>(x[i * k + t]) * decoded[j * k + t];
          ASSERT_NEAR(y[i * n + j], ref, 1e-3)
              << "dot rows up to " << dot_rows_max << ", m " << m << " row " << i << " col " << j;
        }
      }
    }
  }
  std::vector<float> row(k);
  w.RowToF32(50, row.data());
  for (int64_t t = 0; t < k; ++t) ASSERT_EQ(row[t], decoded[50 * k + t]);
}

TEST(WeightsDtypeTest, ParsesTheChoicesAndNamesThemOnError) {
  EXPECT_FALSE(ParseWeightsDtype("stored")->has_value());
  EXPECT_EQ(**ParseWeightsDtype("Q8_0"), GgmlType::kQ8_0);
  EXPECT_EQ(**ParseWeightsDtype("f32"), GgmlType::kF32);
  auto bad = ParseWeightsDtype("q3_k");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("q8_0"), std::string::npos);
}

TEST(WeightsDtypeTest, ConvertsEveryMatrixAndRefusesShapesTheTypeCannotHold) {
  auto m =
      LoadModel({.model = "synthetic:stories260k", .synthetic_seed = 3, .weights_dtype = "f16"});
  ASSERT_TRUE(m.ok()) << m.status();
  // Embedding plus seven matrices per layer, all F16 now, their fp32 fields empty.
  EXPECT_EQ(m->weights.stored.size(), 1u + 7u * m->config.n_layers);
  for (const auto& [name, matrix] : m->weights.stored)
    EXPECT_EQ(matrix.type, GgmlType::kF16) << name;
  EXPECT_TRUE(m->weights.layers[0].wq.empty());
  EXPECT_TRUE(m->weights.CheckShapes(m->config).ok());
  const size_t f16_bytes = m->weights.HeldBytes();
  m->weights.DequantizeStored(m->config);
  EXPECT_TRUE(m->weights.stored.empty());
  EXPECT_GT(m->weights.HeldBytes(), f16_bytes * 3 / 2);
  // stories260K's FFN is 172 wide: not a whole number of 32-element Q8_0 blocks.
  auto q8 = LoadModel({.model = "synthetic:stories260k", .weights_dtype = "q8_0"});
  ASSERT_FALSE(q8.ok());
  EXPECT_NE(std::string(q8.status().message()).find("ffn_down"), std::string::npos) << q8.status();
}

TEST(WeightsDtypeTest, SmolLm2KeepsItsStoredTypesAndConvertsOnRequest) {
  auto stored = testing::LoadSmolLm2("stored");
  if (stored.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  // Q8_0 is one of the requantization targets; the model still answers greedily the same way
  // on a short prompt as on its stored Q4_1 weights' fp32 decoding.
  auto q8 = testing::LoadSmolLm2("q8_0");
  auto fp32 = testing::LoadSmolLm2("f32");
  ASSERT_NE(q8.backend, nullptr);
  // The stored Q4_1 / Q8_0 matrices take under a fifth of the fp32 path's memory.
  const size_t stored_bytes = static_cast<CpuBackend&>(*stored.backend).weight_bytes();
  const size_t fp32_bytes = static_cast<CpuBackend&>(*fp32.backend).weight_bytes();
  EXPECT_LT(stored_bytes, 110u << 20);
  EXPECT_GT(fp32_bytes, 5 * stored_bytes);
  EXPECT_NE(static_cast<CpuBackend&>(*stored.backend).kernel_isa(), "");
  const std::vector<int32_t> prompt = stored.tokenizer->Encode("The capital of France is");
  const std::vector<int32_t> want = testing::Greedy(fp32, prompt, 6);
  EXPECT_EQ(testing::Greedy(stored, prompt, 6), want);
  EXPECT_EQ(testing::Greedy(q8, prompt, 6), want);
}

}  // namespace
}  // namespace kvserve::cpu
