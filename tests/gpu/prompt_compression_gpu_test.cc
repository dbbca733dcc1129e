// The prompt-compression kernels chained as a backend runs them at one layer of a mixed batch — a
// fastkv prompt that also propagates, a snapkv prompt, a full request that is not scored (window
// 0) — against the twins chained on the kernels' own window scores: the scores within fp32
// rounding of their twin, everything after them bit for bit and row for row. SmolLM2's shape
// (9 query / 3 KV heads, head_dim 64) and Llama-3.1-8B's (32 / 8, head_dim 128).
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/kv_compaction.h"
#include "kernels/cpu_reference/row_gather.h"
#include "kernels/cpu_reference/score_pooling.h"
#include "kernels/cpu_reference/token_top_k.h"
#include "kernels/cpu_reference/window_scores.h"
#include "kernels/kv_compaction.h"
#include "kernels/row_gather.h"
#include "kernels/score_pooling.h"
#include "kernels/token_top_k.h"
#include "kernels/window_scores.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, n_heads, n_kv_heads)
using ModelShape = std::tuple<int, int, int>;

class PromptCompressionGpuTest : public testing::GpuTestWithParam<ModelShape> {};

std::string Describe(const ModelShape& c) {
  const auto [head_dim, n_heads, n_kv_heads] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_heads" << n_heads << "_kv" << n_kv_heads;
  return name.str();
}

TEST_P(PromptCompressionGpuTest, ChainedKernelsMatchChainedTwins) {
  const auto [head_dim, n_heads, n_kv_heads] = GetParam();
  const int dim = 256;  // hidden rows carried through propagation
  const int page_size = 16;
  // fastkv: budget 40, propagates 60 rows; snapkv: budget 20, keeps all rows; full: unscored.
  const std::vector<int32_t> kv_lens = {200, 77, 33};
  const std::vector<int32_t> windows = {8, 8, 0};
  const std::vector<int32_t> cu_prefix = {0, 192, 261, 261};
  const std::vector<int32_t> cu_kept = {0, 40, 60, 60};
  const std::vector<int32_t> cu_propagated = {0, 60, 137, 170};
  const ScoredPrefixes shape_prefixes{
      .num_seqs = 3, .max_kv_len = 200, .max_window = 8, .total_prefix = cu_prefix.back()};
  const int total_rows = 310;
  const testing::HostRaggedBatch chunks =
      testing::MakeRaggedBatch({{.fresh = 200}, {.fresh = 77}, {.fresh = 33}});
  std::mt19937 rng(head_dim + n_heads);
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, kv_lens, rng);
  const int q_stride = (n_heads + 2 * n_kv_heads) * head_dim;
  const std::vector<Bf16> q = testing::RandomBf16(static_cast<size_t>(total_rows) * q_stride, rng);
  const std::vector<Bf16> hidden = testing::RandomBf16(static_cast<size_t>(total_rows) * dim, rng);
  std::vector<int32_t> positions(total_rows);
  for (int i = 0; i < total_rows; ++i) positions[i] = i % 200;
  const size_t head_count = static_cast<size_t>(cu_prefix.back()) * n_heads;
  const size_t kv_count = static_cast<size_t>(cu_prefix.back()) * n_kv_heads;
  const size_t kept_count = static_cast<size_t>(cu_kept.back()) * n_kv_heads;
  const int propagated = cu_propagated.back();
  size_t select_bytes = 0;
  ASSERT_CUDA_OK(SelectionScratchBytes(static_cast<int>(kv_count), 3 * n_kv_heads, &select_bytes));

  // The device chain.
  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<int32_t> d_kv_lens(kv_lens), d_windows(windows), d_cu_prefix(cu_prefix);
  DeviceBuffer<int32_t> d_cu_kept(cu_kept), d_cu_propagated(cu_propagated);
  DeviceBuffer<int32_t> d_cu_seqlens(chunks.cu_seqlens), d_positions(positions);
  DeviceBuffer<Bf16> d_q(q), d_hidden(hidden);
  DeviceBuffer<float> d_scores(head_count), d_kv(kv_count), d_totals(cu_prefix.back());
  DeviceBuffer<float> d_window_scratch(WindowScoresScratchFloats(3, 200, n_heads, 8));
  DeviceBuffer<unsigned char> d_select_scratch(select_bytes);
  DeviceBuffer<int32_t> d_kept(kept_count), d_propagated(propagated);
  DeviceBuffer<Bf16> d_compaction_scratch(kept_count * 2 * head_dim);
  DeviceBuffer<Bf16> d_next_hidden(static_cast<size_t>(propagated) * dim);
  DeviceBuffer<int32_t> d_next_positions(propagated);
  ScoredPrefixes prefixes = shape_prefixes;
  prefixes.kv_lens = d_kv_lens.data();
  prefixes.windows = d_windows.data();
  prefixes.cu_prefix = d_cu_prefix.data();
  ASSERT_CUDA_OK(LaunchWindowScores({.q = d_q.data(),
                                     .q_row_stride = q_stride,
                                     .cu_seqlens = d_cu_seqlens.data(),
                                     .prefixes = prefixes,
                                     .cache = d_cache.view,
                                     .n_heads = n_heads,
                                     .scale = 1.0f / std::sqrt(static_cast<float>(head_dim)),
                                     .scores = d_scores.data(),
                                     .scratch = d_window_scratch.data()},
                                    nullptr));
  const ScorePoolingParams pooling{.head_scores = d_scores.data(),
                                   .prefixes = prefixes,
                                   .n_heads = n_heads,
                                   .n_kv_heads = n_kv_heads,
                                   .pooling = ScorePooling::kMax,
                                   .kernel = 7,
                                   .kv_scores = d_kv.data(),
                                   .totals = d_totals.data()};
  ASSERT_CUDA_OK(LaunchScorePooling(pooling, nullptr));
  ASSERT_CUDA_OK(LaunchSelectKvHeadRows({.kv_scores = d_kv.data(),
                                         .prefixes = prefixes,
                                         .n_kv_heads = n_kv_heads,
                                         .cu_kept = d_cu_kept.data(),
                                         .kept_rows = d_kept.data(),
                                         .scratch = d_select_scratch.data(),
                                         .scratch_bytes = select_bytes},
                                        nullptr));
  ASSERT_CUDA_OK(LaunchSelectPropagatedRows({.totals = d_totals.data(),
                                             .prefixes = prefixes,
                                             .cu_keep = d_cu_propagated.data(),
                                             .rows = d_propagated.data(),
                                             .scratch = d_select_scratch.data(),
                                             .scratch_bytes = select_bytes},
                                            nullptr));
  ASSERT_CUDA_OK(LaunchKvCompaction({.cache = d_cache.view,
                                     .num_seqs = 3,
                                     .cu_kept = d_cu_kept.data(),
                                     .kept_rows = d_kept.data(),
                                     .total_kept = cu_kept.back(),
                                     .max_kept = 40,
                                     .scratch = d_compaction_scratch.data()},
                                    nullptr));
  ASSERT_CUDA_OK(LaunchRowGather({.src = d_hidden.data(),
                                  .src_stride = dim,
                                  .dst = d_next_hidden.data(),
                                  .dst_stride = dim,
                                  .cols = dim,
                                  .rows = d_propagated.data(),
                                  .n = propagated,
                                  .cu_src = d_cu_seqlens.data(),
                                  .cu_dst = d_cu_propagated.data(),
                                  .num_seqs = 3,
                                  .src_ids = d_positions.data(),
                                  .dst_ids = d_next_positions.data()},
                                 nullptr));

  // The host chain, from the device's window scores on.
  ScoredPrefixes host_prefixes = shape_prefixes;
  host_prefixes.kv_lens = kv_lens.data();
  host_prefixes.windows = windows.data();
  host_prefixes.cu_prefix = cu_prefix.data();
  const std::vector<float> scores = d_scores.ToHost();
  std::vector<float> twin_scores(head_count);
  reference::WindowScores({.q = q.data(),
                           .q_row_stride = q_stride,
                           .cu_seqlens = chunks.cu_seqlens.data(),
                           .prefixes = host_prefixes,
                           .cache = cache.View(cache.pages.data(), cache.page_table.data()),
                           .n_heads = n_heads,
                           .scale = 1.0f / std::sqrt(static_cast<float>(head_dim)),
                           .scores = twin_scores.data()});
  testing::ExpectAllNear(scores, twin_scores, 2e-6f, 1e-4f, "window scores");
  std::vector<float> kv(kv_count), totals(cu_prefix.back());
  ScorePoolingParams host_pooling = pooling;
  host_pooling.head_scores = scores.data();
  host_pooling.prefixes = host_prefixes;
  host_pooling.kv_scores = kv.data();
  host_pooling.totals = totals.data();
  reference::ScorePoolingByKvHead(host_pooling);
  EXPECT_EQ(d_kv.ToHost(), kv);
  EXPECT_EQ(d_totals.ToHost(), totals);
  std::vector<int32_t> kept(kept_count), rows(propagated);
  reference::SelectKvHeadRows({.kv_scores = kv.data(),
                               .prefixes = host_prefixes,
                               .n_kv_heads = n_kv_heads,
                               .cu_kept = cu_kept.data(),
                               .kept_rows = kept.data()});
  reference::SelectPropagatedRows({.totals = totals.data(),
                                   .prefixes = host_prefixes,
                                   .cu_keep = cu_propagated.data(),
                                   .rows = rows.data()});
  EXPECT_EQ(d_kept.ToHost(), kept);
  EXPECT_EQ(d_propagated.ToHost(), rows);
  // snapkv keeps all its rows for propagation, the full request too, in order.
  for (int r = 0; r < 77; ++r) ASSERT_EQ(rows[60 + r], r);
  for (int r = 0; r < 33; ++r) ASSERT_EQ(rows[137 + r], r);
  reference::KvCompaction({.cache = cache.View(cache.pages.data(), cache.page_table.data()),
                           .num_seqs = 3,
                           .cu_kept = cu_kept.data(),
                           .kept_rows = kept.data(),
                           .total_kept = cu_kept.back(),
                           .max_kept = 40});
  testing::ExpectBitsEqual(d_cache.pages.ToHost(), cache.pages, "compacted cache");
  std::vector<Bf16> next_hidden(static_cast<size_t>(propagated) * dim);
  std::vector<int32_t> next_positions(propagated);
  reference::RowGather({.src = hidden.data(),
                        .src_stride = dim,
                        .dst = next_hidden.data(),
                        .dst_stride = dim,
                        .cols = dim,
                        .rows = rows.data(),
                        .n = propagated,
                        .cu_src = chunks.cu_seqlens.data(),
                        .cu_dst = cu_propagated.data(),
                        .num_seqs = 3,
                        .src_ids = positions.data(),
                        .dst_ids = next_positions.data()});
  testing::ExpectBitsEqual(d_next_hidden.ToHost(), next_hidden, "propagated hidden rows");
  EXPECT_EQ(d_next_positions.ToHost(), next_positions);
}

INSTANTIATE_TEST_SUITE_P(Models, PromptCompressionGpuTest,
                         ::testing::Values(ModelShape{64, 9, 3}, ModelShape{128, 32, 8}),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
