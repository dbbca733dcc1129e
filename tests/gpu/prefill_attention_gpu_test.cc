// LaunchPrefillAttention against its CPU twin: a ragged batch of sequences (a fresh prompt, chunks
// continuing cached prefixes, single-token chunks), lengths that are no multiple of the tiles,
// head_dim 64 and 128, page sizes 16 and 32, GQA groups 1, 3 and 4 (K/V never repeated).
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/prefill_attention.h"
#include "kernels/prefill_attention.h"
#include "tests/gpu/attention_tolerance.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size, group)
using PrefillCase = std::tuple<int, int, int>;

class PrefillAttentionGpuTest : public testing::GpuTestWithParam<PrefillCase> {};

// The case as a name: test names (for --gtest_filter) and failure messages.
std::string Describe(const PrefillCase& c) {
  const auto [head_dim, page_size, group] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size << "_group" << group;
  return name.str();
}

TEST_P(PrefillAttentionGpuTest, MatchesTwinOnRaggedBatch) {
  const auto [head_dim, page_size, group] = GetParam();
  const int n_kv_heads = 2;
  const int n_heads = n_kv_heads * group;
  const testing::HostRaggedBatch batch = testing::MakeRaggedBatch({{.cached = 0, .fresh = 77},
                                                                   {.cached = 45, .fresh = 20},
                                                                   {.cached = 0, .fresh = 1},
                                                                   {.cached = 130, .fresh = 65},
                                                                   {.cached = 200, .fresh = 1}});
  std::mt19937 rng(head_dim * 100 + page_size * 10 + group);
  // The new tokens' K/V are already in the cache (appended before attention runs).
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, batch.kv_lens, rng);
  // Q as rows of the fused QKV projection; the output contiguous.
  const int q_stride = (n_heads + 2 * n_kv_heads) * head_dim;
  const int out_stride = n_heads * head_dim;
  const std::vector<Bf16> q =
      testing::RandomBf16(static_cast<size_t>(batch.total_tokens()) * q_stride, rng);
  const PrefillAttentionParams shape{.q_row_stride = q_stride,
                                     .out_row_stride = out_stride,
                                     .n_heads = n_heads,
                                     .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))};

  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<Bf16> d_q(q);
  DeviceBuffer<Bf16> d_out(static_cast<size_t>(batch.total_tokens()) * out_stride);
  DeviceBuffer<int32_t> d_cu(batch.cu_seqlens);
  DeviceBuffer<int32_t> d_positions(batch.cache_positions);
  DeviceBuffer<int32_t> d_kv_lens(batch.kv_lens);
  PrefillAttentionParams device_params = shape;
  device_params.q = d_q.data();
  device_params.out = d_out.data();
  device_params.batch = batch.View(d_cu.data(), d_positions.data());
  device_params.kv_lens = d_kv_lens.data();
  device_params.cache = d_cache.view;
  ASSERT_CUDA_OK(LaunchPrefillAttention(device_params, nullptr));

  std::vector<Bf16> expected(static_cast<size_t>(batch.total_tokens()) * out_stride);
  PrefillAttentionParams host_params = shape;
  host_params.q = q.data();
  host_params.out = expected.data();
  host_params.batch = batch.View(batch.cu_seqlens.data(), batch.cache_positions.data());
  host_params.kv_lens = batch.kv_lens.data();
  host_params.cache = cache.View(cache.pages.data(), cache.page_table.data());
  reference::PrefillAttention(host_params);

  testing::ExpectAllNear(d_out.ToHost(), expected, testing::kAttentionAtol, testing::kAttentionRtol,
                         Describe(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PrefillAttentionGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32),
                                            ::testing::Values(1, 3, 4)),
                         [](const auto& info) { return Describe(info.param); });

class PrefillAttentionLimitsGpuTest : public testing::GpuTest {};

TEST_F(PrefillAttentionLimitsGpuTest, RejectsShapesItDoesNotSupport) {
  PrefillAttentionParams params;
  params.n_heads = 4;
  params.cache.layout = {.n_kv_heads = 1, .page_size = 16, .head_dim = 96};
  EXPECT_EQ(LaunchPrefillAttention(params, nullptr), cudaErrorInvalidValue);  // head_dim
  params.cache.layout.head_dim = 64;
  params.n_heads = 6;
  params.cache.layout.n_kv_heads = 4;
  EXPECT_EQ(LaunchPrefillAttention(params, nullptr), cudaErrorInvalidValue);  // not a group
}

}  // namespace
}  // namespace kvserve::kernels
