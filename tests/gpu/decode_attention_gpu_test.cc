// LaunchDecodeAttention against its CPU twin: one query per sequence over caches from 1 to 4100
// tokens, with the planner's split, a split per tile (the merge at its widest) and no split.
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/decode_attention.h"
#include "kernels/decode_attention.h"
#include "tests/gpu/attention_tolerance.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size, group)
using DecodeCase = std::tuple<int, int, int>;

class DecodeAttentionGpuTest : public testing::GpuTestWithParam<DecodeCase> {};

// The case as a name: test names (for --gtest_filter) and failure messages.
std::string Describe(const DecodeCase& c) {
  const auto [head_dim, page_size, group] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size << "_group" << group;
  return name.str();
}

int SmCount() {
  int device = 0;
  int sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  return sms;
}

TEST_P(DecodeAttentionGpuTest, MatchesTwinWithEverySplit) {
  const auto [head_dim, page_size, group] = GetParam();
  const int n_kv_heads = 2;
  const int n_heads = n_kv_heads * group;
  const std::vector<int32_t> kv_lens = {1, 63, 300, 4100, 65};
  const int num_seqs = static_cast<int>(kv_lens.size());
  const int max_kv_len = *std::max_element(kv_lens.begin(), kv_lens.end());
  std::mt19937 rng(head_dim * 100 + page_size * 10 + group);
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, kv_lens, rng);
  const int q_stride = (n_heads + 2 * n_kv_heads) * head_dim;
  const int out_stride = n_heads * head_dim;
  const std::vector<Bf16> q = testing::RandomBf16(static_cast<size_t>(num_seqs) * q_stride, rng);
  const DecodeAttentionParams shape{.q_row_stride = q_stride,
                                    .out_row_stride = out_stride,
                                    .num_seqs = num_seqs,
                                    .max_kv_len = max_kv_len,
                                    .n_heads = n_heads,
                                    .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))};

  std::vector<Bf16> expected(static_cast<size_t>(num_seqs) * out_stride);
  DecodeAttentionParams host_params = shape;
  host_params.q = q.data();
  host_params.out = expected.data();
  host_params.kv_lens = kv_lens.data();
  host_params.cache = cache.View(cache.pages.data(), cache.page_table.data());
  reference::DecodeAttention(host_params);

  const int tiles = (max_kv_len + kDecodeTileKeys - 1) / kDecodeTileKeys;
  const std::vector<DecodeSplitPlan> plans = {
      PlanDecodeSplits(num_seqs, n_kv_heads, max_kv_len, SmCount()),
      {.num_splits = tiles, .split_len = kDecodeTileKeys},
      {.num_splits = 1, .split_len = tiles * kDecodeTileKeys}};
  size_t workspace_bytes = 0;
  for (const DecodeSplitPlan& plan : plans) {
    workspace_bytes =
        std::max(workspace_bytes, DecodeWorkspaceBytes(plan, num_seqs, n_heads, head_dim));
  }
  EXPECT_GE(MaxDecodeWorkspaceBytes(num_seqs, n_heads, n_kv_heads, head_dim, max_kv_len, SmCount()),
            DecodeWorkspaceBytes(plans[0], num_seqs, n_heads, head_dim));

  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<Bf16> d_q(q);
  DeviceBuffer<int32_t> d_kv_lens(kv_lens);
  DeviceBuffer<float> d_workspace(workspace_bytes / sizeof(float));
  for (const DecodeSplitPlan& plan : plans) {
    DeviceBuffer<Bf16> d_out(expected.size());
    DecodeAttentionParams device_params = shape;
    device_params.q = d_q.data();
    device_params.out = d_out.data();
    device_params.kv_lens = d_kv_lens.data();
    device_params.cache = d_cache.view;
    ASSERT_CUDA_OK(LaunchDecodeAttention(device_params, plan, d_workspace.data(), nullptr));
    testing::ExpectAllNear(d_out.ToHost(), expected, testing::kAttentionAtol,
                           testing::kAttentionRtol,
                           Describe(GetParam()) + "_splits" + std::to_string(plan.num_splits));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeAttentionGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32),
                                            ::testing::Values(1, 3, 4, 8)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
