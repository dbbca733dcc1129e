// The decode-side logic of quest/freekv on a host cache filled with random keys, driven as the
// backend drives it (Begin → append → Prepare → Segments → Finish per layer and step).
#include "engine/kv/tiered_kv_policy.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <random>
#include <set>

#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

using ::kvserve::testing::RandomNormal;

ModelConfig TinyConfig() {
  ModelConfig c;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.context_length = 1024;
  return c;
}

FreeKvOptions SmallBudget(float tau) {
  FreeKvOptions o;
  o.page_size = 4;
  o.budget = 24;  // 6 slots: 1 sink, 2 window, 3 retrieved
  o.sink = 4;
  o.recent = 8;
  o.tau = tau;
  return o;
}

// Drives `policy` over `steps` decode tokens after a prompt of `prompt` tokens; returns, per step,
// layer and KV head, the sorted first keys of every segment (which pages the head attended to).
struct DecodeTrace {
  std::vector<std::vector<float>> attended;  // [step * layers * heads] first key channel per row
  KvStats stats;
};

DecodeTrace Drive(TieredKvPolicy& policy, const ModelConfig& c, int prompt, int steps,
                  uint32_t seed, std::vector<std::string>* invariant_errors = nullptr) {
  std::mt19937 rng(seed);
  PagePool pool({c.n_kv_heads, 4, c.head_dim}, PagePool::kUnbounded);
  SequenceKvCache kv(pool, c.n_layers);
  const int stride = c.kv_dim();
  for (int l = 0; l < c.n_layers; ++l) {
    const auto k = RandomNormal(prompt * stride, rng);
    EXPECT_TRUE(kv.GrowLayer(l, prompt));
    EXPECT_TRUE(kv.Append(l, k.data(), k.data(), prompt, stride));
  }
  DecodeTrace run;
  for (int t = 0; t < steps; ++t) {
    // Queries drift slowly so some heads correct and some do not.
    const auto q = RandomNormal(c.q_dim(), rng);
    ProvideDeviceBudget(policy, kv, 1);  // the cache's owner, before the step
    for (int l = 0; l < c.n_layers; ++l) {
      policy.BeginDecodeLayer(l);
      const auto k = RandomNormal(stride, rng);
      EXPECT_TRUE(kv.GrowLayer(l, 1));
      EXPECT_TRUE(kv.Append(l, k.data(), k.data(), 1, stride));
      const bool sparse = policy.PrepareDecodeAttention(l, q.data(), kv);
      DecodePageLists lists;
      lists.Reset(c.n_kv_heads);
      for (int skipped = 0; skipped < l; ++skipped) lists.AddDenseLayer();
      if (sparse) policy.DecodePages(l, &lists);
      for (int h = 0; h < c.n_kv_heads; ++h) {
        std::vector<float> firsts;
        if (sparse) {
          // Each list is the head's resident pages; a page's rows stop at the cache's length.
          int rows = 0;
          for (const int32_t page : lists.pages(l, h)) {
            for (int r = page * 4; r < std::min((page + 1) * 4, kv.length(l)); ++r, ++rows) {
              firsts.push_back(kv.key_row(l, h, r)[0]);
            }
          }
          EXPECT_LE(rows, 24);
        } else {
          for (int r = 0; r < kv.length(l); ++r) firsts.push_back(kv.key_row(l, h, r)[0]);
        }
        std::sort(firsts.begin(), firsts.end());
        run.attended.push_back(firsts);
      }
      policy.FinishDecodeAttention(l, q.data(), kv);
    }
  }
  run.stats = policy.Stats(kv);
  return run;
}

TEST(TieredKvPolicyTest, FreeKvWithTauOneEqualsQuestExactly) {
  const ModelConfig c = TinyConfig();
  ThreadRecallExecutor worker;
  TieredKvPolicy quest("quest", TieredKvPolicy::Mode::kQuest, SmallBudget(0.8f), 0.8f, c, {});
  TieredKvPolicy freekv("freekv", TieredKvPolicy::Mode::kFreeKv, SmallBudget(1.0f), 1.0f, c,
                        {.recall = &worker});
  // Each policy's own digests: min/max for Quest, center ± MAD for FreeKV; compared on FreeKV's.
  EXPECT_EQ(quest.digest(), DigestKind::kMinMax);
  EXPECT_EQ(freekv.digest(), DigestKind::kCenterMad);
  quest.SetPageScoring(GroupAggregation::kMeanSoftmax, DigestKind::kCenterMad);
  const DecodeTrace a = Drive(quest, c, 40, 30, 5), b = Drive(freekv, c, 40, 30, 5);
  EXPECT_EQ(a.attended, b.attended);
  EXPECT_GT(b.stats.corrections, 0);
  EXPECT_DOUBLE_EQ(b.stats.correction_rate, 1.0);
  EXPECT_GT(a.stats.recalled_pages, 0);
  EXPECT_LT(a.stats.resident_fraction, 1.0);
  EXPECT_EQ(a.stats.host_tokens, 2 * 70);
}

TEST(TieredKvPolicyTest, SpeculativeFreeKvAttendsWithinBudgetAndCorrectsOnlyDriftedHeads) {
  const ModelConfig c = TinyConfig();
  ThreadRecallExecutor worker;
  TieredKvPolicy freekv("freekv", TieredKvPolicy::Mode::kFreeKv, SmallBudget(0.05f), 0.05f, c,
                        {.recall = &worker});
  const DecodeTrace run = Drive(freekv, c, 40, 30, 9);
  // Random queries have cosine ~0: with tau 0.05 about half the heads drift.
  EXPECT_GT(run.stats.correction_rate, 0.1);
  EXPECT_LT(run.stats.correction_rate, 0.9);
  EXPECT_EQ(run.stats.policy, "freekv");
}

TEST(TieredKvPolicyTest, ContextWithinTheBudgetRunsDense) {
  const ModelConfig c = TinyConfig();
  FreeKvOptions o = SmallBudget(0.8f);
  o.budget = 400;
  TieredKvPolicy freekv("freekv", TieredKvPolicy::Mode::kFreeKv, o, o.tau, c, {});
  const DecodeTrace run = Drive(freekv, c, 40, 10, 3);
  EXPECT_EQ(run.stats.recalled_pages, 0);
  EXPECT_DOUBLE_EQ(run.stats.resident_fraction, 1.0);
  for (size_t i = 0; i < run.attended.size(); ++i) {
    EXPECT_EQ(run.attended[i].size(), 41u + i / (c.n_layers * c.n_kv_heads));
  }
}

TEST(TieredKvPolicyTest, BudgetPagesComeFromTheDevicePoolAndGoBack) {
  const ModelConfig c = TinyConfig();
  PagePool device({c.n_kv_heads, 4, c.head_dim}, 100);
  {
    TieredKvPolicy quest("quest", TieredKvPolicy::Mode::kQuest, SmallBudget(0.8f), 0.8f, c,
                         {.device_pool = &device});
    Drive(quest, c, 40, 2, 1);
    EXPECT_EQ(device.used_pages(), 2 * 6);  // layers x slots
  }
  EXPECT_EQ(device.used_pages(), 0);
  // No room on the device: the sequence stays dense (and correct) rather than failing.
  PagePool tiny({c.n_kv_heads, 4, c.head_dim}, 3);
  TieredKvPolicy quest("quest", TieredKvPolicy::Mode::kQuest, SmallBudget(0.8f), 0.8f, c,
                       {.device_pool = &tiny});
  const DecodeTrace run = Drive(quest, c, 40, 2, 1);
  EXPECT_EQ(run.stats.recalled_pages, 0);
  EXPECT_EQ(tiny.used_pages(), 0);
}

TEST(TieredKvPolicyTest, FastKvFreeKvPutsEachHeadsSelectedRowsFirstAndKeepsEveryRow) {
  // FastKV's selection at the device budget less the recent window orders the host rows:
  // 24 - 8 = 16 rows per KV head first, then the others ascending; nothing dropped.
  ModelConfig c = TinyConfig();
  c.n_layers = 4;
  FastKvFreeKvOptions o;
  static_cast<FreeKvOptions&>(o) = SmallBudget(0.8f);
  auto policy = CreateKvPolicy(o, c);
  ASSERT_TRUE(policy.ok()) << policy.status();
  FastKvOptions plain;
  static_cast<TspOptions&>(plain) = o;
  plain.budget = 16;
  plain.tsp_len = 0;
  auto fastkv = CreateKvPolicy(plain, c);
  ASSERT_TRUE(fastkv.ok()) << fastkv.status();

  std::mt19937 rng(3);
  const int n = 100;
  const PromptCompressionPlan tiered_plan = (*policy)->PlanPrompt(n);
  const PromptCompressionPlan reference_plan = (*fastkv)->PlanPrompt(n);
  ASSERT_FALSE(tiered_plan.empty());
  ASSERT_EQ(tiered_plan.layers[0].window, o.window);
  EXPECT_TRUE(tiered_plan.keep_unselected);
  const auto scores = RandomNormal(static_cast<size_t>(c.n_heads) * (n - o.window), rng);
  auto tiered_selection = SelectPromptRows(tiered_plan, 0, n, scores, c.n_heads, c.n_kv_heads);
  auto reference_selection =
      SelectPromptRows(reference_plan, 0, n, scores, c.n_heads, c.n_kv_heads);
  ASSERT_TRUE(tiered_selection.ok() && reference_selection.ok());
  const LayerSelection& tiered = *tiered_selection;
  const LayerSelection& reference = *reference_selection;
  ASSERT_EQ(reference.retain.size(), static_cast<size_t>(c.n_kv_heads));
  ASSERT_EQ(tiered.retain.size(), static_cast<size_t>(c.n_kv_heads));
  for (int h = 0; h < c.n_kv_heads; ++h) {
    const std::vector<int32_t>& order = tiered.retain[h];
    const std::vector<int32_t>& kept = reference.retain[h];
    ASSERT_EQ(kept.size(), 16u);
    ASSERT_EQ(order.size(), static_cast<size_t>(n));
    // FastKV's prefix rows lead (its order: best first), the other prefix rows follow by score,
    // and the window rows, the newest, stay last: the host tier's recent pages.
    const int lead = 16 - o.window;
    EXPECT_TRUE(std::equal(kept.begin(), kept.begin() + lead, order.begin())) << "head " << h;
    EXPECT_TRUE(std::equal(kept.begin() + lead, kept.end(), order.end() - o.window))
        << "head " << h;
    const std::vector<float> pooled =
        PooledKvHeadScores(scores, n - o.window, c.n_heads, c.n_kv_heads, o.pool, o.pool_kernel);
    const float* head_scores = pooled.data() + static_cast<size_t>(h) * (n - o.window);
    for (int i = 1; i < n - o.window; ++i) {
      EXPECT_GE(head_scores[order[i - 1]], head_scores[order[i]]) << "head " << h << " row " << i;
    }
    std::vector<int32_t> all = order;
    std::sort(all.begin(), all.end());
    for (int r = 0; r < n; ++r) EXPECT_EQ(all[r], r) << "head " << h;
  }
}

}  // namespace
}  // namespace kvserve
