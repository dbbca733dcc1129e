// SnapKV: the shared selection (snapkv_selection.h) against a naive reference, and the policy on
// real models: a budget covering the prompt is `full`, every KV head keeps the window and the same
// count, short prompts are kept whole.
#include "engine/kv/snapkv_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "engine/kv/snapkv_selection.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/random_tensors.h"

namespace kvserve::testing {
namespace {

SnapKvOptions SnapKv(float retain_rate = 0.1f, int budget = 0) {
  SnapKvOptions o;
  o.budget = budget;
  o.retain_rate = retain_rate;
  return o;
}

std::unique_ptr<KvPolicy> Create(const SnapKvOptions& o, const ModelConfig& c) {
  auto p = CreateKvPolicy(o, c);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

TEST(SnapKvSelectionTest, FloorRateTakesTheRateAsWritten) {
  EXPECT_EQ(FloorRate(10, 0.7f), 7);  // the float 0.7f alone would give 6
  EXPECT_EQ(FloorRate(80, 0.1f), 8);
  EXPECT_EQ(FloorRate(79, 0.1f), 7);
  EXPECT_EQ(FloorRate(512, 0.2f), 102);
  EXPECT_EQ(FloorRate(3, 1.0f), 3);
  EXPECT_EQ(FloorRate(0, 0.5f), 0);
}

TEST(SnapKvSelectionTest, BudgetIsConstantOrRateAndNeverBelowWindowPlusOne) {
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f), 1000), 100);
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f), 1009), 100);
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f, 64), 1000), 64);  // a constant wins over the rate
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f), 50), 9);         // ⌊5⌋ < window + 1
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f, 3), 1000), 9);
  EXPECT_EQ(SnapKvBudget(SnapKv(0.1f), 1), 9);
  EXPECT_EQ(MinPromptBudget(SnapKv()), 9);
}

// Pooling, group sum and per-head top-k written out directly.
std::vector<std::set<int32_t>> NaiveRetain(const std::vector<float>& scores, int n, int n_heads,
                                           int n_kv_heads, const SnapKvOptions& o, int budget) {
  const int w = o.window, len = n - w, half = o.pool_kernel / 2, group = n_heads / n_kv_heads;
  std::vector<std::vector<float>> kv(n_kv_heads, std::vector<float>(len, 0.0f));
  for (int h = 0; h < n_heads; ++h) {
    for (int j = 0; j < len; ++j) {
      float pooled = o.pool == ScorePooling::kMax ? -1e30f : 0.0f;
      for (int t = j - half; t <= j + half; ++t) {
        if (t < 0 || t >= len) continue;  // max ignores padding; avg counts it as zeros
        const float v = scores[h * len + t];
        pooled = o.pool == ScorePooling::kMax ? std::max(pooled, v) : pooled + v;
      }
      if (o.pool == ScorePooling::kAvg) pooled /= static_cast<float>(o.pool_kernel);
      kv[h / group][j] += pooled;
    }
  }
  std::vector<std::set<int32_t>> out(n_kv_heads);
  const int keep = std::clamp(budget, w, n) - w;
  for (int g = 0; g < n_kv_heads; ++g) {
    std::vector<int32_t> idx(len);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int32_t a, int32_t b) { return kv[g][a] > kv[g][b]; });
    out[g].insert(idx.begin(), idx.begin() + keep);
    for (int j = len; j < n; ++j) out[g].insert(j);
  }
  return out;
}

TEST(SnapKvSelectionTest, RetainMatchesNaivePoolingGroupSumAndTopK) {
  std::mt19937 rng(11);
  const int n_heads = 6, n_kv_heads = 2;
  for (ScorePooling pool : {ScorePooling::kMax, ScorePooling::kAvg}) {
    for (int kernel : {1, 3, 7}) {
      for (auto [n, budget] : {std::pair{40, 12}, {40, 5}, {40, 40}, {12, 6}, {6, 5}, {5, 9}}) {
        SnapKvOptions o;
        o.window = 4;
        o.pool_kernel = kernel;
        o.pool = pool;
        const int len = std::max(0, n - o.window);
        const std::vector<float> scores = RandomNormal(n_heads * len, rng);
        const auto got = SnapKvRetain(scores, n, n_heads, n_kv_heads, o, budget);
        const auto want = NaiveRetain(scores, n, n_heads, n_kv_heads, o, budget);
        ASSERT_EQ(got.size(), 2u);
        for (int g = 0; g < n_kv_heads; ++g) {
          EXPECT_EQ(std::set<int32_t>(got[g].begin(), got[g].end()), want[g])
              << "n=" << n << " budget=" << budget << " kernel=" << kernel;
          EXPECT_EQ(got[g].size(), want[g].size());  // no duplicates
        }
      }
    }
  }
}

// A budget covering the prompt scores nothing and drops nothing: bit-identical to full.
void ExpectBudgetCoveringPromptIsFull(CpuModel& m, int n) {
  const std::vector<int32_t> prompt = RandomPrompt(3, n, m.config.vocab_size);
  const PolicyRun full = RunGreedy(*m.backend, prompt, nullptr, 6);
  for (const SnapKvOptions& o : {SnapKv(0.1f, n), SnapKv(1.0f), SnapKv(0.1f, n + 100)}) {
    auto policy = Create(o, m.config);
    RecordingPolicy recorder(*policy, m.config);
    const PolicyRun run = RunGreedy(*m.backend, prompt, &recorder, 6);
    EXPECT_EQ(run.tokens, full.tokens);
    EXPECT_EQ(run.logits, full.logits);
    for (const auto& layer : recorder.layers()) EXPECT_EQ(layer.window, 0);
    EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, n));
  }
}

TEST(SnapKvPolicyTest, Stories260KBudgetCoveringThePromptEqualsFull) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  ExpectBudgetCoveringPromptIsFull(m, 150);
}

TEST(SnapKvPolicyTest, SmolLm2BudgetCoveringThePromptEqualsFull) {
  CpuModel m = LoadSmolLm2();
  if (m.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  ExpectBudgetCoveringPromptIsFull(m, 60);
}

TEST(SnapKvPolicyTest, EachKvHeadKeepsItsOwnTopTokensPlusTheWindow) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int n = 200, budget = 20, w = 8;  // ⌊200 · 0.1⌋
  const std::vector<int32_t> prompt = RandomPrompt(4, n, m.config.vocab_size);
  auto policy = Create(SnapKv(), m.config);
  RecordingPolicy recorder(*policy, m.config);
  const PolicyRun run = RunGreedy(*m.backend, prompt, &recorder, 1);
  EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, budget));
  ASSERT_EQ(recorder.layers().size(), static_cast<size_t>(m.config.n_layers));
  bool heads_differ = false;
  for (const auto& layer : recorder.layers()) {
    EXPECT_EQ(layer.window, w);
    EXPECT_EQ(layer.scores.size(), static_cast<size_t>(m.config.n_heads * (n - w)));
    EXPECT_TRUE(layer.decision.propagate.empty());
    const auto& retain = layer.decision.retain;
    ASSERT_EQ(retain.size(), static_cast<size_t>(m.config.n_kv_heads));
    for (const auto& head : retain) {
      ASSERT_EQ(head.size(), static_cast<size_t>(budget));
      const std::set<int32_t> kept(head.begin(), head.end());
      EXPECT_EQ(kept.size(), head.size());
      EXPECT_GE(*kept.begin(), 0);
      EXPECT_LT(*kept.rbegin(), n);
      for (int j = n - w; j < n; ++j) EXPECT_TRUE(kept.count(j)) << "window row " << j;
      heads_differ |= std::set<int32_t>(retain[0].begin(), retain[0].end()) != kept;
    }
  }
  EXPECT_TRUE(heads_differ);
}

TEST(SnapKvPolicyTest, CompressionLeavesThePrefillAndChangesOnlyWhatDecodeSees) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = RandomPrompt(5, 120, m.config.vocab_size);
  const PolicyRun full = RunGreedy(*m.backend, prompt, nullptr, 3);
  auto policy = Create(SnapKv(0.1f), m.config);
  const PolicyRun run = RunGreedy(*m.backend, prompt, policy.get(), 3);
  // Each layer's own prefill attention uses all of its K/V.
  EXPECT_EQ(run.logits[0], full.logits[0]);
  EXPECT_NE(run.logits[1], full.logits[1]);
  EXPECT_EQ(run.stats.policy, "snapkv");
  EXPECT_EQ(run.stats.kept_tokens, std::vector<int>(m.config.n_layers, 12 + 2));
  EXPECT_EQ(run.stats.prefill_flops_fraction, 1.0);
}

TEST(SnapKvPolicyTest, KeptTokensThroughTheGeneratorFollowTheBudget) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  BatchGenerator gen(*m.backend, {.eos_id = -1});
  const int n = 333, max_new = 5;
  for (auto [options, budget] : {std::pair{SnapKv(0.1f), 33},
                                 {SnapKv(0.25f), 83},
                                 {SnapKv(0.1f, 50), 50},
                                 {SnapKv(0.1f, 4), 9}}) {
    GenerationRequest r{.prompt = RandomPrompt(6, n, m.config.vocab_size),
                        .max_new_tokens = max_new,
                        .kv_policy = options};
    auto res = gen.Generate(std::span(&r, 1));
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->front().kv.policy, "snapkv");
    // The budget after prefill, plus every decoded token but the last (never fed back).
    EXPECT_EQ(res->front().kv.kept_tokens,
              std::vector<int>(m.config.n_layers, budget + max_new - 1))
        << "budget " << budget;
  }
}

TEST(SnapKvPolicyTest, ShortPromptsAreKeptWholeAndOthersKeepWindowPlusOne) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  for (int n : {1, 2, 5, 8, 9, 10, 30}) {
    const std::vector<int32_t> prompt = RandomPrompt(7, n, m.config.vocab_size);
    auto policy = Create(SnapKv(), m.config);
    RecordingPolicy recorder(*policy, m.config);
    const PolicyRun run = RunGreedy(*m.backend, prompt, &recorder, 3);
    ASSERT_EQ(run.tokens.size(), 3u) << n;
    // B = max(⌊0.1 n⌋, window + 1) = 9: at most 9 tokens are all kept, unscored.
    const int kept = std::min(n, 9);
    EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, kept)) << n;
    for (const auto& layer : recorder.layers()) EXPECT_EQ(layer.window, n > 9 ? 8 : 0) << n;
    if (n <= 9) {
      EXPECT_EQ(run.tokens, RunGreedy(*m.backend, prompt, nullptr, 3).tokens) << n;
    }
  }
}

}  // namespace
}  // namespace kvserve::testing
