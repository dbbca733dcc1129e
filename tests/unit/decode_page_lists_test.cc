// Sparse decode over the step plan's CSR page lists (DecodePageLists): the lists a step carries
// are the pages the policy selected, and tiered decoding gives exactly the tokens, recalls and
// corrections it gave before the lists existed (recorded with main's kvserve-cli before the engine
// split, on stories260K: `kvserve-cli generate --model stories260K.bin
// --prompt-ids <below> --max-tokens 40 --temperature 0 --ignore-eos --kv-policy P
// --kv-budget 64 --kv-page-size 8 --kv-sink 8 --kv-recent 16 --format json`). The recalled bytes
// and corrections were re-recorded once, when MeanS page scoring gained its 1/sqrt(d) (the tokens
// stayed the same).
#include "engine/kv/decode_page_lists.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/kv/tiered_kv_policy.h"
#include "engine/scheduler/batch_generator.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

const std::vector<int32_t> kPrompt = {
    1,   168, 488, 80,  205, 336, 27,  40,  423, 277, 51,  190, 301, 32,  468, 262, 112, 22,  47,
    225, 217, 38,  126, 49,  285, 220, 33,  426, 292, 66,  488, 117, 325, 324, 301, 488, 34,  298,
    302, 206, 28,  502, 116, 26,  288, 442, 71,  151, 217, 76,  279, 63,  295, 160, 289, 420, 352,
    95,  55,  300, 295, 330, 99,  193, 52,  283, 367, 35,  291, 33,  319, 108, 257, 351, 275, 221,
    400, 163, 241, 302, 475, 235, 188, 156, 130, 409, 95,  360, 402, 127, 44,  297, 156, 271, 256,
    451, 178, 376, 232, 150, 314, 504, 40,  63,  265, 217, 87,  390, 178, 80,  480, 253, 218, 23,
    495, 345, 42,  394, 288, 296, 407, 451, 421, 163, 177, 358, 182, 307, 257, 299, 411, 236, 38,
    433, 50,  486, 141, 245, 359, 343, 36,  34,  377, 362, 161, 334, 298, 511, 351, 423, 231, 148,
    369, 200, 457, 345, 180, 14,  484, 239, 184, 89,  315, 62,  255, 33,  114, 396, 150, 69,  381,
    129, 206, 203, 472, 449, 257, 44,  88,  232, 208, 284, 145, 455, 73,  422, 223, 445, 284, 145,
    364, 215, 508, 186, 352, 455, 197, 493, 121, 80,  45,  93,  80,  121, 340, 122, 9,   251, 428,
    304, 96,  137, 147, 5,   77,  217, 276, 192, 315, 292, 166, 490, 67,  356, 442, 266, 489, 319,
    338, 349, 381, 30,  236, 463, 448, 402, 490, 450, 351, 411, 289, 203, 206, 207, 204, 56,  249,
    327, 208, 34,  100, 37,  507, 109, 228, 86,  59,  177, 310, 29,  55,  3,   293, 80,  277, 54,
    488, 189, 317, 16,  39,  450, 109, 317, 195, 79,  327, 132, 492, 180, 311, 189, 245, 65,  62,
    437, 252, 511, 503, 241, 248, 250, 162, 46,  76,  55,  386, 178, 382, 138};

constexpr TieredOptions kTiers{.budget = 64, .page_size = 8, .sink = 8, .recent = 16};

KvPolicyOptions Tiered(std::string_view name, float tau = 0.8f) {
  if (name == "quest") return QuestOptions{kTiers};
  FreeKvOptions freekv{kTiers};
  freekv.tau = tau;
  if (name == "freekv") return freekv;
  return FastKvFreeKvOptions{freekv};
}

// freekv and fastkv_freekv score pages over center ± MAD digests now; their tokens here were
// recorded with min/max ones, so they run with min/max, straight through the backend (the
// scheduler's recall worker gives the inline recall's tokens: tiered_decode_test).
PolicyRun RunWithMinMaxDigests(CpuModel& m, const KvPolicyOptions& kv) {
  auto created = CreateKvPolicy(kv, m.config);
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return {};
  auto* tiered = dynamic_cast<TieredKvPolicy*>(created->get());
  EXPECT_NE(tiered, nullptr);
  if (tiered == nullptr) return {};
  tiered->SetPageScoring(GroupAggregation::kMeanSoftmax, DigestKind::kMinMax);
  return RunGreedy(*m.backend, kPrompt, tiered, 40, TieredOptionsOf(kv)->page_size);
}

GenerationResult Generate(CpuModel& m, const KvPolicyOptions& kv) {
  BatchGenerator gen(*m.backend, {.page_size = TieredOptionsOf(kv)->page_size});
  const GenerationRequest r{
      .prompt = kPrompt, .max_new_tokens = 40, .ignore_eos = true, .kv_policy = kv};
  auto out = gen.Generate(std::span(&r, 1));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->front() : GenerationResult{};
}

TEST(DecodePageListsTest, LayersAreAddedInOrderAsCsr) {
  DecodePageLists lists;
  lists.Reset(2);
  lists.AddDenseLayer();
  lists.BeginSparseLayer();
  lists.AddHead(std::vector<int32_t>{0, 5, 3});
  lists.AddHead(std::vector<int32_t>{0});
  EXPECT_EQ(lists.layers(), 2);
  EXPECT_FALSE(lists.is_sparse(0));
  EXPECT_TRUE(lists.is_sparse(1));
  EXPECT_FALSE(lists.is_sparse(2));
  EXPECT_EQ(lists.offsets, (std::vector<int32_t>{0, 0, 0, 3, 4}));
  EXPECT_EQ(lists.indices, (std::vector<int32_t>{0, 5, 3, 0}));
  EXPECT_TRUE(lists.pages(0, 1).empty());
  const auto head0 = lists.pages(1, 0);
  EXPECT_EQ(std::vector<int32_t>(head0.begin(), head0.end()), (std::vector<int32_t>{0, 5, 3}));
}

// Quest selects with the step's own query and recalls synchronously, so after a step its
// residency maps are exactly what the step attended: the plan's lists must equal them.
TEST(DecodePageListsTest, TheStepPlansListsAreThePagesThePolicySelected) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const ModelConfig& c = m.config;
  auto created = CreateKvPolicy(Tiered("quest"), c);
  ASSERT_TRUE(created.ok()) << created.status();
  auto* quest = dynamic_cast<TieredKvPolicy*>(created->get());
  ASSERT_NE(quest, nullptr);
  PagePool pool({c.n_kv_heads, 8, c.head_dim}, PagePool::kUnbounded);
  SequenceKvCache kv(pool, c.n_layers);
  std::vector<int32_t> positions(kPrompt.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  DecodePageLists lists;
  SequenceChunk chunk{.tokens = kPrompt,
                      .positions = positions,
                      .kv = &kv,
                      .policy = quest,
                      .whole_prompt = true,
                      .decode_pages = &lists};
  StepOutput out;
  int32_t token = 0;
  for (int step = 0; step < 12; ++step) {
    ASSERT_TRUE(GrowForStep(*m.backend, std::span(&chunk, 1)).ok());
    ASSERT_TRUE(m.backend->Execute(std::span(&chunk, 1), &out).ok());
    ASSERT_TRUE(out.chunk_status[0].ok()) << out.chunk_status[0];
    if (step > 0) {
      // Every layer of the decode step attended sparsely over its KV heads' resident pages.
      ASSERT_EQ(lists.layers(), c.n_layers);
      const int n_pages = (kv.length(0) + 7) / 8;
      for (int l = 0; l < c.n_layers; ++l) {
        ASSERT_TRUE(lists.is_sparse(l)) << "layer " << l;
        for (int h = 0; h < c.n_kv_heads; ++h) {
          const auto listed = lists.pages(l, h);
          EXPECT_EQ(std::vector<int32_t>(listed.begin(), listed.end()),
                    quest->residency(l, h).ResidentPages())
              << "step " << step << " layer " << l << " head " << h;
          EXPECT_EQ(listed.size(), 8u);  // the budget's 8 slots of ~38 pages
          EXPECT_LT(static_cast<int>(listed.size()), n_pages);
        }
      }
    }
    token = static_cast<int32_t>(std::max_element(out.logits.begin(), out.logits.end()) -
                                 out.logits.begin());
    positions.assign(1, static_cast<int32_t>(kPrompt.size()) + step);
    chunk = {.tokens = std::span(&token, 1),
             .positions = positions,
             .kv = &kv,
             .policy = quest,
             .decode_pages = &lists,
             .kind = ChunkKind::kDecode};
    ProvideDeviceBudget(*quest, kv, 1);  // as the engine's KvCacheManager does
  }
}

TEST(DecodePageListsTest, TieredDecodeGivesTheTokensItGaveBeforeThePageLists) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  // These tokens and counts were recorded with fp32 KV (before fp16 became the CPU's default).
  ASSERT_TRUE(m.backend->SetKvDtype(KvDtype::kF32).ok());
  const std::vector<int32_t> quest_tokens = {421, 266, 261, 413, 265, 282, 295, 433, 269, 261,
                                             416, 422, 413, 415, 299, 286, 399, 262, 423, 295,
                                             426, 410, 13,  438, 310, 286, 384, 393, 269, 282,
                                             420, 277, 420, 416, 416, 422, 413, 415, 299, 426};
  const GenerationResult quest = Generate(m, Tiered("quest"));
  EXPECT_EQ(quest.tokens, quest_tokens);
  EXPECT_EQ(quest.kv.recalled_bytes, 405504);
  const PolicyRun freekv = RunWithMinMaxDigests(m, Tiered("freekv", 0.9f));
  EXPECT_EQ(freekv.tokens, quest_tokens);  // this prompt's freekv tokens equal quest's
  EXPECT_EQ(freekv.stats.recalled_bytes, 405504);
  EXPECT_EQ(freekv.stats.corrections, 249);
  // Since 2026-12-02 its host rows keep the prompt's window last (as on CUDA): tokens 11 and 12
  // and the counts below changed with that, nothing else.
  const PolicyRun fastkv_freekv = RunWithMinMaxDigests(m, Tiered("fastkv_freekv"));
  EXPECT_EQ(
      fastkv_freekv.tokens,
      (std::vector<int32_t>{421, 266, 261, 428, 412, 331, 269, 282, 420, 277, 264, 266, 426, 13,
                            438, 310, 286, 384, 344, 444, 429, 275, 266, 267, 298, 414, 267, 265,
                            282, 295, 433, 269, 262, 411, 295, 419, 426, 338, 286, 384}));
  EXPECT_EQ(fastkv_freekv.stats.recalled_bytes, 337920);
  EXPECT_EQ(fastkv_freekv.stats.corrections, 132);
}

}  // namespace
}  // namespace kvserve::testing
