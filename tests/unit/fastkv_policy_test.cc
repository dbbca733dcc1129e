// FastKV on real models: no TSP and a budget covering the prompt is `full`; per-layer budgets and
// T follow research/fastkv.md §2.3/§3; TSP rows are sorted with the window; short prompts run as
// full; a ragged batch with a full sequence gives each what it gives alone.
#include "engine/kv/fastkv_policy.h"

#include <gtest/gtest.h>

#include <set>

#include "engine/kv/prefill_flops.h"
#include "engine/kv/snapkv_selection.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

constexpr int kWindow = 8;

FastKvOptions FastKv(float retain_rate = 0.1f, float tsp_rate = 0.2f) {
  FastKvOptions o;
  o.retain_rate = retain_rate;
  o.tsp_rate = tsp_rate;
  return o;
}

std::unique_ptr<KvPolicy> Create(const FastKvOptions& o, const ModelConfig& c) {
  auto p = CreateKvPolicy(o, c);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

// Budgets up to and including the TSP layer, and after it.
std::vector<int> Kept(int n_layers, int tsp_layer, int before, int after) {
  std::vector<int> kept(n_layers, after);
  for (int l = 0; l <= tsp_layer; ++l) kept[l] = before;
  return kept;
}

void ExpectNoTspAndCoveringBudgetIsFull(CpuModel& m, int n) {
  const std::vector<int32_t> prompt = RandomPrompt(3, n, m.config.vocab_size);
  const PolicyRun full = RunGreedy(*m.backend, prompt, nullptr, 6);
  FastKvOptions by_rate = FastKv(1.0f, 1.0f);
  FastKvOptions by_constant = FastKv();
  by_constant.budget = n;
  by_constant.tsp_len = n;
  for (const FastKvOptions& o : {by_rate, by_constant}) {
    auto policy = Create(o, m.config);
    const PolicyRun run = RunGreedy(*m.backend, prompt, policy.get(), 6);
    EXPECT_EQ(run.tokens, full.tokens);
    EXPECT_EQ(run.logits, full.logits);
    EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, n));
    EXPECT_EQ(run.stats.tsp_tokens, n);
    EXPECT_EQ(run.stats.prefill_flops_fraction, 1.0);
  }
}

TEST(FastKvPolicyTest, Stories260KNoTspAndACoveringBudgetEqualsFull) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  ExpectNoTspAndCoveringBudgetIsFull(m, 150);
}

TEST(FastKvPolicyTest, SmolLm2NoTspAndACoveringBudgetEqualsFull) {
  CpuModel m = LoadSmolLm2();
  if (m.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  ExpectNoTspAndCoveringBudgetIsFull(m, 60);
}

TEST(FastKvPolicyTest, TspLayerDefaultsToHalfTheLayersMinusOne) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EXPECT_EQ(FastKvPolicy(FastKv(), m.config).tsp_layer(), 1);  // 5 / 2 - 1
  ModelConfig smol = m.config;
  smol.n_layers = 30;
  EXPECT_EQ(FastKvPolicy(FastKv(), smol).tsp_layer(), 14);
  smol.n_layers = 1;
  EXPECT_EQ(FastKvPolicy(FastKv(), smol).tsp_layer(), 0);
  FastKvOptions o = FastKv();
  o.tsp_layer = 3;
  EXPECT_EQ(FastKvPolicy(o, m.config).tsp_layer(), 3);
}

struct BudgetCase {
  const char* what;
  FastKvOptions options;
  int n;
  int before, t, after;  // budgets up to the TSP layer, T, budgets after it
};

TEST(FastKvPolicyTest, KeptTokensAndTspLengthFollowTheFormulas) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  auto with = [](FastKvOptions o, int budget, int tsp_len, int tsp_layer = -1) {
    o.budget = budget;
    o.tsp_len = tsp_len;
    o.tsp_layer = tsp_layer;
    return o;
  };
  const BudgetCase cases[] = {
      // ⌊300 · 0.1⌋ = 30; T = ⌊300 · 0.2⌋ = 60; ⌊60 · 0.1 / 0.2⌋ = 30.
      {"defaults", FastKv(), 300, 30, 60, 30},
      // ⌊109 · 0.15⌋ = 16; T = ⌊21.8⌋ = 21; ⌊21 · 0.75⌋ = 15: layers differ by a token.
      {"rates", FastKv(0.15f, 0.2f), 109, 16, 21, 15},
      {"constant budget and tsp_len", with(FastKv(), 24, 50), 300, 24, 50, 24},
      {"constant budget, tsp rate", with(FastKv(), 24, 0), 300, 24, 60, 24},
      // A budget above the prompt keeps every row, and TSP fires anyway (§10.4).
      {"budget above the prompt", with(FastKv(), 500, 0), 300, 300, 60, 60},
      // ⌊300 · 0.2⌋ = 60 everywhere, but only T = 40 rows reach the later layers.
      {"rate budget, constant tsp_len", with(FastKv(0.2f, 0.2f), 0, 40), 300, 60, 40, 40},
      {"tsp at layer 3", with(FastKv(), 0, 0, 3), 300, 30, 60, 30},
      {"tsp at layer 0", with(FastKv(0.3f, 0.5f), 0, 0, 0), 101, 30, 50, 30},
  };
  for (const BudgetCase& c : cases) {
    auto policy = Create(c.options, m.config);
    auto* fastkv = static_cast<FastKvPolicy*>(policy.get());
    const PolicyRun run =
        RunGreedy(*m.backend, RandomPrompt(8, c.n, m.config.vocab_size), policy.get(), 3);
    EXPECT_EQ(run.kept_after_prefill,
              Kept(m.config.n_layers, fastkv->tsp_layer(), c.before, c.after))
        << c.what;
    EXPECT_EQ(run.stats.tsp_tokens, c.t) << c.what;
    EXPECT_EQ(run.stats.kept_tokens,
              Kept(m.config.n_layers, fastkv->tsp_layer(), c.before + 2, c.after + 2))
        << c.what;
    EXPECT_EQ(run.stats.policy, "fastkv");
  }
}

TEST(FastKvPolicyTest, TspRowsAreSortedKeepTheWindowAndFollowTheSummedScores) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int n = 250, t = 50, budget = 25;
  const FastKvOptions options = FastKv();
  auto policy = Create(options, m.config);
  RecordingPolicy recorder(*policy, m.config);
  RunGreedy(*m.backend, RandomPrompt(9, n, m.config.vocab_size), &recorder, 1);
  ASSERT_EQ(recorder.layers().size(), static_cast<size_t>(m.config.n_layers));
  bool heads_differ = false;
  for (const auto& layer : recorder.layers()) {
    const int rows = layer.layer <= 1 ? n : t;
    EXPECT_EQ(layer.n, rows);
    EXPECT_EQ(layer.window, kWindow);
    ASSERT_EQ(layer.scores.size(), static_cast<size_t>(m.config.n_heads * (rows - kWindow)));
    // Per KV head: the same count, the window (of this layer's rows) always kept.
    const auto& retain = layer.decision.retain;
    ASSERT_EQ(retain.size(), static_cast<size_t>(m.config.n_kv_heads));
    for (const auto& head : retain) {
      const std::set<int32_t> kept(head.begin(), head.end());
      EXPECT_EQ(head.size(), static_cast<size_t>(budget));
      EXPECT_EQ(kept.size(), head.size());
      for (int j = rows - kWindow; j < rows; ++j) EXPECT_TRUE(kept.count(j));
      heads_differ |= std::set<int32_t>(retain[0].begin(), retain[0].end()) != kept;
    }
    if (layer.layer != 1) {
      EXPECT_TRUE(layer.decision.propagate.empty());
      continue;
    }
    const std::vector<int32_t>& rows_kept = layer.decision.propagate;
    ASSERT_EQ(rows_kept.size(), static_cast<size_t>(t));
    EXPECT_TRUE(std::is_sorted(rows_kept.begin(), rows_kept.end()));
    EXPECT_EQ(std::set<int32_t>(rows_kept.begin(), rows_kept.end()).size(), rows_kept.size());
    for (int i = 0; i < kWindow; ++i) EXPECT_EQ(rows_kept[t - kWindow + i], n - kWindow + i);
    // The shared building blocks on the recorded scores give the same rows.
    const std::vector<float> kv =
        KvHeadWindowScores(layer.scores, n, m.config.n_heads, m.config.n_kv_heads, options);
    EXPECT_EQ(rows_kept, SelectPropagatedTokens(kv.data(), m.config.n_kv_heads, n, kWindow, t));
    EXPECT_EQ(retain, SnapKvRetain(layer.scores, n, m.config.n_heads, m.config.n_kv_heads, options,
                                   budget));
  }
  EXPECT_TRUE(heads_differ);
}

TEST(FastKvPolicyTest, PrefillFlopsFractionCountsTheRowsEachLayerRan) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int n = 400, t = 80;
  auto policy = Create(FastKv(), m.config);
  const PolicyRun run =
      RunGreedy(*m.backend, RandomPrompt(10, n, m.config.vocab_size), policy.get(), 1);
  // Layers 0 and 1 attend over all rows; layer 1's MLP and the later layers run on T.
  const std::vector<LayerRows> rows = {{n, n}, {n, t}, {t, t}, {t, t}, {t, t}};
  EXPECT_DOUBLE_EQ(run.stats.prefill_flops_fraction, PrefillFlopsFraction(m.config, rows, n));
  EXPECT_LT(run.stats.prefill_flops_fraction, 0.5);
  EXPECT_GT(run.stats.prefill_flops_fraction, 0.2);
}

TEST(FastKvPolicyTest, ShortPromptsRunAsFullAndLongerOnesClampToWindowPlusOne) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EXPECT_EQ(FastKvPolicy(FastKv(), m.config).min_prompt_tokens(), 18);  // 2 · (window + 1)
  for (int n : {1, 2, 7, 8, 9, 17}) {
    const std::vector<int32_t> prompt = RandomPrompt(11, n, m.config.vocab_size);
    auto policy = Create(FastKv(), m.config);
    RecordingPolicy recorder(*policy, m.config);
    const PolicyRun run = RunGreedy(*m.backend, prompt, &recorder, 4);
    const PolicyRun full = RunGreedy(*m.backend, prompt, nullptr, 4);
    EXPECT_EQ(run.logits, full.logits) << n;
    EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, n)) << n;
    EXPECT_EQ(run.stats.tsp_tokens, n);
    EXPECT_EQ(run.stats.prefill_flops_fraction, 1.0);
    for (const auto& layer : recorder.layers()) EXPECT_EQ(layer.window, 0) << n;
  }
  // From 18 tokens on: budgets and T never below window + 1 = 9 (⌊Nρ⌋ and ⌊Nτ⌋ are smaller).
  for (int n : {18, 19, 50}) {
    auto policy = Create(FastKv(), m.config);
    const PolicyRun run =
        RunGreedy(*m.backend, RandomPrompt(12, n, m.config.vocab_size), policy.get(), 4);
    ASSERT_EQ(run.tokens.size(), 4u);
    EXPECT_EQ(run.stats.tsp_tokens, std::max(9, n / 5)) << n;
    EXPECT_EQ(run.kept_after_prefill, std::vector<int>(m.config.n_layers, 9)) << n;
    EXPECT_LT(run.stats.prefill_flops_fraction, 1.0);
  }
}

TEST(FastKvPolicyTest, PolicyIsReusableForASecondPrompt) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  auto policy = Create(FastKv(), m.config);
  const std::vector<int32_t> prompt = RandomPrompt(13, 200, m.config.vocab_size);
  const PolicyRun first =
      RunGreedy(*m.backend, RandomPrompt(14, 300, m.config.vocab_size), policy.get(), 2);
  const PolicyRun again = RunGreedy(*m.backend, prompt, policy.get(), 4);
  auto fresh = Create(FastKv(), m.config);
  const PolicyRun alone = RunGreedy(*m.backend, prompt, fresh.get(), 4);
  EXPECT_EQ(again.logits, alone.logits);
  EXPECT_EQ(again.stats.tsp_tokens, 40);
  EXPECT_EQ(first.stats.tsp_tokens, 60);
}

TEST(FastKvPolicyTest, RaggedBatchWithFullSequencesGivesEachWhatItGivesAlone) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  auto request = [&](uint32_t seed, int n, const KvPolicyOptions& kv) {
    return GenerationRequest{.prompt = RandomPrompt(seed, n, m.config.vocab_size),
                             .max_new_tokens = 12,
                             .kv_policy = kv};
  };
  FastKvOptions avg = FastKv(0.15f, 0.3f);
  avg.pool = ScorePooling::kAvg;
  const std::vector<GenerationRequest> reqs = {
      request(20, 90, FullOptions{}), request(21, 150, FastKv()), request(22, 33, FullOptions{}),
      request(23, 120, avg), request(24, 60, SnapKvOptions{})};
  BatchGenerator gen(*m.backend, {.eos_id = -1});
  auto together = gen.Generate(reqs);
  ASSERT_TRUE(together.ok()) << together.status();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto alone = gen.Generate(std::span(&reqs[i], 1));
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ((*together)[i].tokens, alone->front().tokens) << "request " << i;
    EXPECT_EQ((*together)[i].kv.kept_tokens, alone->front().kv.kept_tokens) << "request " << i;
    EXPECT_EQ((*together)[i].kv.tsp_tokens, alone->front().kv.tsp_tokens) << "request " << i;
  }
  EXPECT_EQ((*together)[1].kv.tsp_tokens, 30);
  EXPECT_EQ((*together)[0].kv.kept_tokens, std::vector<int>(m.config.n_layers, 90 + 11));
}

}  // namespace
}  // namespace kvserve::testing
