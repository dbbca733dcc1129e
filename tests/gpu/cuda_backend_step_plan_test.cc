// The CUDA backend's step metadata (StepPlan, host only): layers that run the same rows over caches
// of the same lengths share one group of arrays; a FastKV prompt's layers past its TSP, and decode
// over the per-layer lengths a compressing policy left, get their own.
#include "engine/runtime/cuda/step_plan.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve::cuda {
namespace {

constexpr int kLayers = 4;

class StepPlanTest : public ::testing::Test {
 protected:
  PagePool pool_{{2, 16, 8}, PagePool::kUnbounded};
};

TEST_F(StepPlanTest, AFullStepIsOneGroup) {
  SequenceKvCache a(pool_, kLayers), b(pool_, kLayers);
  const std::vector<int32_t> ta(5, 1), pa = {0, 1, 2, 3, 4}, tb = {2}, pb = {9};
  ASSERT_TRUE(b.Grow(9));
  for (int l = 0; l < kLayers; ++l) ASSERT_TRUE(b.AppendUnwritten(l, 9));
  const std::vector<SequenceChunk> batch = {{.tokens = ta, .positions = pa, .kv = &a},
                                            {.tokens = tb, .positions = pb, .kv = &b}};
  for (const SequenceChunk& ch : batch) ASSERT_TRUE(ch.kv->Grow(int(ch.tokens.size())));
  StepPlan plan;
  plan.Build(batch, kLayers, /*decode_runs=*/true);
  ASSERT_EQ(plan.groups().size(), 1u);
  const LayerGroup& g = plan.group(kLayers - 1);
  EXPECT_EQ(g.total_rows, 6);
  const auto ints = plan.ints();
  EXPECT_EQ(ints[g.positions + 5], 9);
  EXPECT_EQ(ints[g.cache_positions + 5], 9);
  EXPECT_EQ(ints[g.kv_lens + 0], 5);
  EXPECT_EQ(ints[g.kv_lens + 1], 10);
  ASSERT_EQ(g.runs.size(), 2u);  // a prefill run, then a decode run
  EXPECT_TRUE(g.runs[1].decode);
  EXPECT_EQ(ints[plan.logit_row_ids() + 0], 4);
  EXPECT_EQ(ints[plan.logit_row_ids() + 1], 5);
}

TEST_F(StepPlanTest, LayersPastATspAndLayersOfOtherLengthsGetTheirOwnGroups) {
  // A fastkv prompt of 10 tokens propagating 4 after layer 1, beside a decode token whose cache
  // layers hold 6, 6, 3 and 3 rows.
  PromptCompressionPlan fastkv{.prompt_tokens = 10, .tsp_keep = 4};
  fastkv.layers = {{.window = 2, .keep = 5},
                   {.window = 2, .keep = 5, .propagate = true},
                   {.window = 2, .keep = 3},
                   {.window = 2, .keep = 3}};
  SequenceKvCache a(pool_, kLayers), b(pool_, kLayers);
  ASSERT_TRUE(b.Grow(6));
  for (int l = 0; l < kLayers; ++l) ASSERT_TRUE(b.AppendUnwritten(l, l < 2 ? 6 : 3));
  const std::vector<int32_t> ta(10, 1), tb = {2}, pb = {12};
  std::vector<int32_t> pa(10);
  for (int i = 0; i < 10; ++i) pa[i] = i;
  const std::vector<SequenceChunk> batch = {
      {.tokens = ta, .positions = pa, .kv = &a, .whole_prompt = true, .compression = &fastkv},
      {.tokens = tb, .positions = pb, .kv = &b}};
  for (const SequenceChunk& ch : batch) ASSERT_TRUE(ch.kv->Grow(int(ch.tokens.size())));
  EXPECT_EQ(ChunkRowsAt(batch[0], 1), 10);
  EXPECT_EQ(ChunkRowsAt(batch[0], 2), 4);
  EXPECT_EQ(ChunkRowsAt(batch[1], 2), 1);
  StepPlan plan;
  plan.Build(batch, kLayers, /*decode_runs=*/true);
  ASSERT_EQ(plan.groups().size(), 2u);
  const LayerGroup& before = plan.group(0);
  const LayerGroup& after = plan.group(3);
  EXPECT_EQ(&plan.group(1), &before);
  EXPECT_EQ(&plan.group(2), &after);
  EXPECT_FALSE(before.propagated);
  EXPECT_TRUE(after.propagated);  // its positions come from the device's gather
  EXPECT_NE(after.positions, before.positions);
  EXPECT_EQ(before.total_rows, 11);
  EXPECT_EQ(after.total_rows, 5);
  const auto ints = plan.ints();
  EXPECT_EQ(ints[after.cu_seqlens + 1], 4);
  EXPECT_EQ(ints[after.cache_positions + 3], 3);  // the prompt's 4 rows at its cache's front
  EXPECT_EQ(ints[after.cache_positions + 4], 3);  // the decode token after 3 rows
  EXPECT_EQ(ints[before.cache_positions + 10], 6);
  EXPECT_EQ(ints[after.kv_lens + 0], 4);
  EXPECT_EQ(ints[after.kv_lens + 1], 4);
  EXPECT_EQ(ints[before.kv_lens + 1], 7);
  // The LM head reads each chunk's last row as the last group lays them out.
  EXPECT_EQ(ints[plan.logit_row_ids() + 0], 3);
  EXPECT_EQ(ints[plan.logit_row_ids() + 1], 4);

  // The next step: decode tokens only, over the lengths the prompt left (5, 5, 3, 3 + 1 each).
  for (int l = 0; l < kLayers; ++l) {
    ASSERT_TRUE(a.AppendUnwritten(l, ChunkRowsAt(batch[0], l)));
    a.Truncate(l, fastkv.layers[l].keep);
  }
  const std::vector<int32_t> pa2 = {10};
  const std::vector<SequenceChunk> decode = {{.tokens = tb, .positions = pa2, .kv = &a},
                                             {.tokens = tb, .positions = pb, .kv = &b}};
  for (const SequenceChunk& ch : decode) ASSERT_TRUE(ch.kv->Grow(1));
  plan.Build(decode, kLayers, /*decode_runs=*/true);
  ASSERT_EQ(plan.groups().size(), 2u);
  EXPECT_EQ(plan.groups()[1].first_layer, 2);
  EXPECT_FALSE(plan.groups()[1].propagated);
  EXPECT_EQ(plan.groups()[1].positions, plan.groups()[0].positions);  // same rows, same positions
  const auto decode_ints = plan.ints();
  EXPECT_EQ(decode_ints[plan.groups()[0].kv_lens + 0], 6);
  EXPECT_EQ(decode_ints[plan.groups()[1].kv_lens + 0], 4);
  EXPECT_EQ(plan.groups()[0].runs[0].max_kv_len, 7);
  EXPECT_EQ(plan.groups()[1].runs[0].max_kv_len, 4);
}

}  // namespace
}  // namespace kvserve::cuda
