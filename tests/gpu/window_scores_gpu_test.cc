// LaunchWindowScores against its CPU twin: a ragged batch whose sequences continue cached prefixes
// (their window queries are the last rows of their chunks), caches not a multiple of the page size
// and longer than a key split, a window-0 sequence (skipped), a prompt no longer than its window
// (no prefix), head_dim 64 and 128, GQA groups 1 and 3 (SmolLM2: 9 query / 3 KV heads).
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/window_scores.h"
#include "kernels/window_scores.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"
#include "tests/gpu/scored_batch_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size, group)
using WindowCase = std::tuple<int, int, int>;

class WindowScoresGpuTest : public testing::GpuTestWithParam<WindowCase> {};

std::string Describe(const WindowCase& c) {
  const auto [head_dim, page_size, group] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size << "_group" << group;
  return name.str();
}

TEST_P(WindowScoresGpuTest, MatchesTwinOnRaggedBatch) {
  const auto [head_dim, page_size, group] = GetParam();
  const int n_kv_heads = 3;
  const int n_heads = n_kv_heads * group;
  // (cached, fresh) chunks and each sequence's window; the cache holds cached + fresh tokens.
  const testing::HostRaggedBatch chunks = testing::MakeRaggedBatch({{.cached = 50, .fresh = 27},
                                                                    {.cached = 0, .fresh = 5},
                                                                    {.cached = 0, .fresh = 300},
                                                                    {.cached = 0, .fresh = 8},
                                                                    {.cached = 17, .fresh = 3},
                                                                    {.cached = 0, .fresh = 1},
                                                                    {.cached = 513, .fresh = 8}});
  const testing::HostScoredBatch batch = testing::MakeScoredBatch({{.n = 77, .window = 8},
                                                                   {.n = 5, .window = 0},
                                                                   {.n = 300, .window = 8},
                                                                   {.n = 8, .window = 8},
                                                                   {.n = 20, .window = 3},
                                                                   {.n = 1, .window = 1},
                                                                   {.n = 521, .window = 8}});
  ASSERT_EQ(chunks.kv_lens, batch.kv_lens);
  std::mt19937 rng(head_dim * 100 + page_size * 10 + group);
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, batch.kv_lens, rng);
  // Q as rows of the fused QKV projection, as the backend holds them.
  const int q_stride = (n_heads + 2 * n_kv_heads) * head_dim;
  const std::vector<Bf16> q =
      testing::RandomBf16(static_cast<size_t>(chunks.total_tokens()) * q_stride, rng);
  const size_t score_count = static_cast<size_t>(batch.total_prefix()) * n_heads;
  const WindowScoresParams shape{.q_row_stride = q_stride,
                                 .n_heads = n_heads,
                                 .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))};

  testing::DevicePagedCache d_cache(cache);
  testing::DeviceScoredBatch d_batch(batch);
  DeviceBuffer<Bf16> d_q(q);
  DeviceBuffer<int32_t> d_cu(chunks.cu_seqlens);
  DeviceBuffer<float> d_scores(score_count);
  DeviceBuffer<float> d_scratch(
      WindowScoresScratchFloats(batch.num_seqs(), batch.max_kv_len, n_heads, batch.max_window));
  WindowScoresParams device_params = shape;
  device_params.q = d_q.data();
  device_params.cu_seqlens = d_cu.data();
  device_params.prefixes = d_batch.view;
  device_params.cache = d_cache.view;
  device_params.scores = d_scores.data();
  device_params.scratch = d_scratch.data();
  ASSERT_CUDA_OK(LaunchWindowScores(device_params, nullptr));

  std::vector<float> expected(score_count);
  WindowScoresParams host_params = shape;
  host_params.q = q.data();
  host_params.cu_seqlens = chunks.cu_seqlens.data();
  host_params.prefixes = batch.HostView();
  host_params.cache = cache.View(cache.pages.data(), cache.page_table.data());
  host_params.scores = expected.data();
  reference::WindowScores(host_params);

  // Each score sums at most `window` probabilities; fp32 against the twin's double.
  testing::ExpectAllNear(d_scores.ToHost(), expected, 2e-6f, 1e-4f, Describe(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, WindowScoresGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16),
                                            ::testing::Values(1, 3)),
                         [](const auto& info) { return Describe(info.param); });

class WindowScoresLimitsGpuTest : public testing::GpuTest {};

TEST_F(WindowScoresLimitsGpuTest, RejectsShapesItDoesNotSupport) {
  WindowScoresParams params;
  params.n_heads = 6;
  params.cache.layout = {.n_kv_heads = 4, .page_size = 16, .head_dim = 64};
  EXPECT_EQ(LaunchWindowScores(params, nullptr), cudaErrorInvalidValue);  // not a group
  params.n_heads = 8;
  params.prefixes.max_window = 1024;  // the group's window queries do not fit shared memory
  EXPECT_EQ(LaunchWindowScores(params, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace kvserve::kernels
