// The accuracy evaluation's shared prefill (tools/eval): one prefill per group, decoded under
// several KV configurations, must give exactly what each real policy gives through BatchGenerator.
#include "tools/eval/shared_prefill.h"

#include <gtest/gtest.h>

#include "tests/support/kv_policy_runner.h"
#include "tests/support/model_fixtures.h"
#include "tools/eval/passkey_task.h"
#include "tools/eval/self_check.h"

namespace kvserve::testing {
namespace {

std::vector<eval::EvalConfig> Configs(const std::vector<std::string>& labels) {
  std::vector<eval::EvalConfig> configs;
  for (const std::string& label : labels) {
    auto c = eval::ParseEvalConfig(label);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) configs.push_back(*c);
  }
  return configs;
}

void ExpectSameAsRealPolicies(CpuModel& m, const std::vector<int32_t>& prompt,
                              const std::vector<std::string>& labels, int max_new) {
  auto results =
      eval::SelfCheckPrompt(*m.backend, prompt, Configs(labels), max_new, m.tokenizer->eos_id());
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), labels.size());
  for (const eval::SelfCheckResult& r : *results) {
    EXPECT_TRUE(r.tokens_equal) << r.config;
    EXPECT_TRUE(r.stats_equal) << r.config;
    EXPECT_FALSE(r.real_tokens.empty()) << r.config;
  }
}

TEST(SharedPrefillTest, Stories260KEqualsRealPolicies) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  // 5 layers: TSP after layer 1; ρ = 0.1 keeps 30 of 300, τ = 0.2 propagates 60.
  ExpectSameAsRealPolicies(m, RandomPrompt(11, 300, m.config.vocab_size),
                           {"full", "snapkv", "snapkv-64", "fastkv", "fastkv-32", "fastkv-64"}, 24);
}

TEST(SharedPrefillTest, SmolLm2PasskeyEqualsRealPolicies) {
  CpuModel m = LoadSmolLm2();
  if (m.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  auto prompt = eval::BuildPasskeyPrompt(*m.tokenizer, m.chat_template,
                                         {.target_tokens = 300, .depth_percent = 40, .seed = 3});
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  ExpectSameAsRealPolicies(
      m, prompt->ids, {"full", "snapkv", "snapkv-128", "fastkv", "fastkv-64", "fastkv-128"}, 8);
}

TEST(SharedPrefillTest, RecordsEveryLayerAndCompressesOnlyTheCopies) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = RandomPrompt(5, 200, m.config.vocab_size);
  PagePool pool({m.config.n_kv_heads, 32, m.config.head_dim}, PagePool::kUnbounded);
  auto full = eval::RunSharedPrefill(*m.backend, pool, prompt, nullptr, 8);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->layers.size(), static_cast<size_t>(m.config.n_layers));
  for (int l = 0; l < m.config.n_layers; ++l) {
    EXPECT_EQ(full->layers[l].n, 200);
    EXPECT_EQ(full->layers[l].window, 8);
    EXPECT_EQ(full->layers[l].scores.size(), static_cast<size_t>(m.config.n_heads) * 192);
    EXPECT_TRUE(full->layers[l].propagate.empty());
    EXPECT_EQ(full->kv->length(l), 200);
  }
  SnapKvOptions snap;
  snap.budget = 40;
  auto r = eval::DecodeFromSharedPrefill(*m.backend, pool, *full, snap, 4, -1, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens.size(), 4u);
  // 40 kept + 3 decoded in every layer; the shared cache keeps all of its rows.
  EXPECT_EQ(r->kv.kept_tokens, std::vector<int>(m.config.n_layers, 43));
  EXPECT_EQ(full->kv->length(0), 200);

  // FastKV propagates at its TSP layer: a full prefill is not its prefill.
  auto wrong = eval::DecodeFromSharedPrefill(*m.backend, pool, *full, FastKvOptions{}, 4, -1, "");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Tiered configurations run wrapped (experiment_policies.h): the wrapper must not change what the
// policy does, and it logs each step's resident pages: sink, selected and window, sorted.
TEST(SharedPrefillTest, TieredConfigsEqualRealPoliciesAndLogTheirResidentPages) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = RandomPrompt(7, 300, m.config.vocab_size);
  ExpectSameAsRealPolicies(m, prompt, {"quest-128p16", "freekv-128p16"}, 12);

  PagePool pool({m.config.n_kv_heads, 16, m.config.head_dim}, PagePool::kUnbounded);
  auto full = eval::RunSharedPrefill(*m.backend, pool, prompt, nullptr, 8);
  ASSERT_TRUE(full.ok()) << full.status();
  auto quest = eval::ParseEvalConfig("quest-128p16+mad");
  ASSERT_TRUE(quest.ok());
  auto r = eval::DecodeFromSharedPrefill(*m.backend, pool, *full, quest->options, 5, -1,
                                         quest->experiment);
  ASSERT_TRUE(r.ok()) << r.status();
  // 5 tokens: the first from the prefill's logits, then 4 steps through the policy.
  ASSERT_EQ(r->residency.size(), 4u);
  const int n_pages = (300 + 16 - 1) / 16;  // 19, the 300th token's page partial
  for (const auto& step : r->residency) {
    ASSERT_EQ(step.size(), static_cast<size_t>(m.config.n_layers));
    for (const auto& layer : step) {
      ASSERT_EQ(layer.size(), static_cast<size_t>(m.config.n_kv_heads));
      for (const std::vector<int32_t>& pages : layer) {
        ASSERT_EQ(pages.size(), 8u);  // 128 / 16: 2 sink, 4 selected, 2 window
        EXPECT_TRUE(std::is_sorted(pages.begin(), pages.end()));
        EXPECT_EQ(pages[0], 0);
        EXPECT_EQ(pages[1], 1);
        EXPECT_EQ(pages.back(), n_pages - 1);
      }
    }
  }
  EXPECT_FALSE(eval::ParseEvalConfig("quest-128p16+median").ok());
}

}  // namespace
}  // namespace kvserve::testing
