// PromptCompressor driven as CudaBackend drives it, on the metadata the backend builds (a StepPlan
// made after the caches grew, then the step's rows counted into the caches): a FastKV prompt that
// propagates at layer 0, a SnapKV prompt and a decode token without a plan in one step of two
// layers. Checked against the engine's own selection (SelectPromptRows) and the kernels' twins:
// the window scores, the kept and propagated rows of each (layer, KV head), the compacted pages,
// the gathered hidden rows and positions, and the host caches' lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/kv/page_pool.h"
#include "engine/kv/prompt_compression.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/runtime/cuda/prompt_compressor.h"
#include "engine/runtime/cuda/step_plan.h"
#include "kernels/cpu_reference/window_scores.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::cuda {
namespace {

using kernels::Bf16;
using kernels::testing::DeviceBuffer;

constexpr int kHeads = 9, kKvHeads = 3, kHeadDim = 64, kPageSize = 16, kLayers = 2;
constexpr int kQkvStride = (kHeads + 2 * kKvHeads) * kHeadDim;
constexpr int kHiddenCols = 32;

class PromptCompressorTest : public kernels::testing::GpuTest {};

TEST_F(PromptCompressorTest, RunsEachChunkOnItsOwnRowsAtEachLayer) {
  ModelConfig config;
  config.n_layers = kLayers;
  config.n_heads = kHeads;
  config.n_kv_heads = kKvHeads;
  config.head_dim = kHeadDim;
  // fastkv: 70 rows, keeps 30 and propagates 40 at layer 0, then keeps 20 of those 40;
  // snapkv: 50 rows, keeps 20 at both layers; a decode token over 30 cached rows, no plan.
  const PromptCompressionPlan fastkv{
      .prompt_tokens = 70,
      .layers = {{.window = 8, .keep = 30, .propagate = true}, {.window = 8, .keep = 20}},
      .tsp_keep = 40,
      .record_scores = true};
  const PromptCompressionPlan snapkv{
      .prompt_tokens = 50,
      .layers = {{.window = 8, .keep = 20}, {.window = 8, .keep = 20}},
      .tsp_keep = 50,
      .pool = ScorePooling::kAvg,
      .pool_kernel = 5,
      .record_scores = true};
  ASSERT_TRUE(PromptCompressor::Check(fastkv, 70, kLayers).ok());
  ASSERT_TRUE(PromptCompressor::Check(snapkv, 50, kLayers).ok());
  EXPECT_FALSE(PromptCompressor::Check(fastkv, 69, kLayers).ok());

  PagePool pool({kKvHeads, kPageSize, kHeadDim}, PagePool::kUnbounded);
  SequenceKvCache kv_a(pool, kLayers), kv_b(pool, kLayers), kv_c(pool, kLayers);
  ASSERT_TRUE(kv_c.Grow(30));
  for (int l = 0; l < kLayers; ++l) ASSERT_TRUE(kv_c.AppendUnwritten(l, 30));
  const std::vector<int32_t> tokens_a(70, 5), tokens_b(50, 6), tokens_c = {7};
  std::vector<int32_t> positions_a(70), positions_b(50);
  for (int i = 0; i < 70; ++i) positions_a[i] = i;
  for (int i = 0; i < 50; ++i) positions_b[i] = 100 + i;
  const std::vector<int32_t> positions_c = {30};
  const std::vector<SequenceChunk> batch = {
      {.tokens = tokens_a,
       .positions = positions_a,
       .kv = &kv_a,
       .whole_prompt = true,
       .compression = &fastkv},
      {.tokens = tokens_b,
       .positions = positions_b,
       .kv = &kv_b,
       .whole_prompt = true,
       .compression = &snapkv},
      {.tokens = tokens_c, .positions = positions_c, .kv = &kv_c}};

  // As CudaBackend::Execute: grow, plan, count the rows in, then the compressor.
  for (const SequenceChunk& ch : batch)
    ASSERT_TRUE(ch.kv->Grow(static_cast<int>(ch.tokens.size())));
  StepPlan plan;
  plan.Build(batch, kLayers, /*decode_runs=*/true);
  ASSERT_EQ(plan.groups().size(), 2u);
  const LayerGroup& g0 = plan.group(0);
  const LayerGroup& g1 = plan.group(1);
  EXPECT_EQ(g0.total_rows, 121);
  EXPECT_EQ(g1.total_rows, 91);
  EXPECT_TRUE(g1.propagated);
  for (const SequenceChunk& ch : batch) {
    for (int l = 0; l < kLayers; ++l) ASSERT_TRUE(ch.kv->AppendUnwritten(l, ChunkRowsAt(ch, l)));
  }
  PromptCompressor compressor;
  ASSERT_TRUE(compressor.Plan(batch, config));
  EXPECT_TRUE(compressor.Scores(0) && compressor.Scores(1));
  EXPECT_TRUE(compressor.Propagates(0));
  EXPECT_FALSE(compressor.Propagates(1));
  EXPECT_EQ(compressor.PropagatedRows(0), 91);
  absl::StatusOr<size_t> bytes = compressor.DeviceBytes();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  DeviceBuffer<char> scratch(*bytes);
  ASSERT_TRUE(compressor.Bind(scratch.data(), nullptr).ok());

  std::mt19937 rng(12);
  const kernels::PagedKvLayout layout{kKvHeads, kPageSize, kHeadDim};
  const std::vector<Bf16> pages =
      kernels::testing::RandomBf16(size_t(plan.max_page() + 1) * layout.PageElements(), rng);
  const std::vector<int32_t> ints(plan.ints().begin(), plan.ints().end());
  DeviceBuffer<Bf16> d_pages(pages);
  DeviceBuffer<int32_t> d_ints(ints);
  auto cache_at = [&](int layer, Bf16* at, const int32_t* table) {
    return kernels::PagedKvCache{.pages = at,
                                 .layout = layout,
                                 .page_table = table + plan.page_table(layer),
                                 .page_table_stride = plan.page_table_stride()};
  };
  const std::vector<Bf16> q0 = kernels::testing::RandomBf16(size_t(121) * kQkvStride, rng);
  const std::vector<Bf16> q1 = kernels::testing::RandomBf16(size_t(91) * kQkvStride, rng);
  const std::vector<Bf16> hidden = kernels::testing::RandomBf16(size_t(121) * kHiddenCols, rng);
  DeviceBuffer<Bf16> d_q0(q0), d_q1(q1), d_hidden(hidden), d_next_hidden(size_t(91) * kHiddenCols);
  ASSERT_TRUE(compressor
                  .RunLayer(0, d_q0.data(), kQkvStride, d_ints.data() + g0.cu_seqlens,
                            cache_at(0, d_pages.data(), d_ints.data()), nullptr)
                  .ok());
  ASSERT_TRUE(compressor
                  .Propagate(0, d_hidden.data(), kHiddenCols, d_ints.data() + g0.cu_seqlens,
                             d_ints.data() + g0.positions, d_next_hidden.data(),
                             d_ints.data() + g1.positions, nullptr)
                  .ok());
  ASSERT_TRUE(compressor
                  .RunLayer(1, d_q1.data(), kQkvStride, d_ints.data() + g1.cu_seqlens,
                            cache_at(1, d_pages.data(), d_ints.data()), nullptr)
                  .ok());
  std::vector<std::vector<KvRetention>> retained(batch.size());
  std::vector<std::vector<PromptLayerScores>> recorded(batch.size());
  compressor.Finish(batch, kLayers, &retained, &recorded);
  // The compressor only reports what each layer kept; applying it is the caches' owner's job.
  EXPECT_EQ(kv_a.length(0), 70);
  StepOutput out;
  out.Reset(batch.size());
  out.retained = retained;
  ApplyRetention(batch, out);

  // The host caches keep what each layer kept; the decode token's layers just grew.
  EXPECT_EQ(kv_a.length(0), 30);
  EXPECT_EQ(kv_a.length(1), 20);
  EXPECT_EQ(kv_b.length(0), 20);
  EXPECT_EQ(kv_b.length(1), 20);
  EXPECT_EQ(kv_c.length(0), 31);
  EXPECT_EQ(kv_c.length(1), 31);
  ASSERT_EQ(recorded[0].size(), 2u);
  ASSERT_EQ(recorded[1].size(), 2u);
  EXPECT_TRUE(recorded[2].empty());

  // The twins' window scores, from the metadata as the plans imply it (not the compressor's).
  const std::vector<Bf16> compacted = d_pages.ToHost();
  const std::vector<int32_t> next_ints = d_ints.ToHost();
  const std::vector<Bf16> next_hidden = d_next_hidden.ToHost();
  for (int l = 0; l < kLayers; ++l) {
    const int n_a = l == 0 ? 70 : 40;
    const std::vector<int32_t> windows = {8, 8, 0}, kv_lens = {n_a, 50, 31};
    const std::vector<int32_t> cu_prefix = {0, n_a - 8, n_a - 8 + 42, n_a - 8 + 42};
    std::vector<float> twin(size_t(cu_prefix.back()) * kHeads);
    const LayerGroup& g = plan.group(l);
    kernels::reference::WindowScores(
        {.q = (l == 0 ? q0 : q1).data(),
         .q_row_stride = kQkvStride,
         .cu_seqlens = ints.data() + g.cu_seqlens,
         .prefixes = {.kv_lens = kv_lens.data(),
                      .windows = windows.data(),
                      .cu_prefix = cu_prefix.data(),
                      .num_seqs = 3,
                      .max_kv_len = 70,
                      .max_window = 8,
                      .total_prefix = cu_prefix.back()},
         .cache = cache_at(l, const_cast<Bf16*>(pages.data()), ints.data()),
         .n_heads = kHeads,
         .scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim)),
         .scores = twin.data()});
    for (int s = 0; s < 2; ++s) {
      const PromptCompressionPlan& p = s == 0 ? fastkv : snapkv;
      const PromptLayerScores& r = recorded[s][l];
      const int n = s == 0 ? n_a : 50;
      SCOPED_TRACE(testing::Message() << "sequence " << s << " layer " << l);
      ASSERT_EQ(r.n, n);
      ASSERT_EQ(r.window, 8);
      kernels::testing::ExpectAllNear(
          r.scores,
          std::vector<float>(twin.begin() + size_t(cu_prefix[s]) * kHeads,
                             twin.begin() + size_t(cu_prefix[s + 1]) * kHeads),
          2e-6f, 1e-4f, "window scores");
      // The engine's selection on the device's scores: the same rows, row for row.
      absl::StatusOr<LayerSelection> want = SelectPromptRows(p, l, n, r.scores, kHeads, kKvHeads);
      ASSERT_TRUE(want.ok()) << want.status();
      EXPECT_EQ(r.retain, want->retain);
      EXPECT_EQ(r.propagate, want->propagate);
      ASSERT_EQ(r.retain.size(), size_t(kKvHeads));
      // Each head's kept rows now lead its cache pages, K and V.
      const kernels::PagedKvCache before =
          cache_at(l, const_cast<Bf16*>(pages.data()), ints.data());
      for (int g = 0; g < kKvHeads; ++g) {
        for (size_t i = 0; i < r.retain[g].size(); ++i) {
          const int row = r.retain[g][i];
          ASSERT_TRUE(row >= 0 && row < n) << "kept row " << row << " of " << n;
          for (int d = 0; d < kHeadDim; ++d) {
            ASSERT_EQ(compacted[before.KeyOffset(s, int(i), g) + d].bits,
                      pages[before.KeyOffset(s, row, g) + d].bits);
            ASSERT_EQ(compacted[before.ValueOffset(s, int(i), g) + d].bits,
                      pages[before.ValueOffset(s, row, g) + d].bits);
          }
        }
      }
    }
  }
  // Layer 0's TSP: the fastkv prompt's 40 rows, the others' rows all, hidden rows and positions.
  const std::vector<int32_t>& rows_a = recorded[0][0].propagate;
  ASSERT_EQ(rows_a.size(), 40u);
  EXPECT_EQ(rows_a.back(), 69);
  EXPECT_TRUE(recorded[1][0].propagate.empty());
  std::vector<int32_t> sources(rows_a.begin(), rows_a.end());
  for (int i = 0; i < 51; ++i) sources.push_back(70 + i);
  for (int i = 0; i < 91; ++i) {
    EXPECT_EQ(next_ints[g1.positions + i], ints[g0.positions + sources[i]]) << "row " << i;
    for (int c = 0; c < kHiddenCols; ++c) {
      ASSERT_EQ(next_hidden[size_t(i) * kHiddenCols + c].bits,
                hidden[size_t(sources[i]) * kHiddenCols + c].bits)
          << "row " << i;
    }
  }
}

}  // namespace
}  // namespace kvserve::cuda
