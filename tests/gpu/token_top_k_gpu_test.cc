// LaunchSelectKvHeadRows and LaunchSelectPropagatedRows against their CPU twins, row for row (the
// order included): scores with many exact ties (earlier token first), budgets below the window,
// inside the prefix and past n, prompts no longer than their window, window-0 sequences that keep
// a prefix of rows or none, a scored sequence that keeps nothing, 3 and 8 KV heads, and too little
// scratch.
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/token_top_k.h"
#include "kernels/token_top_k.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/scored_batch_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (n_kv_heads, tie levels: scores are multiples of 1/8 below levels / 8)
using TopKCase = std::tuple<int, int>;

class TokenTopKGpuTest : public testing::GpuTestWithParam<TopKCase> {
 protected:
  static testing::HostScoredBatch Batch() {
    return testing::MakeScoredBatch({{.n = 77, .window = 8, .budget = 20},
                                     {.n = 40, .window = 0, .budget = 40},
                                     {.n = 600, .window = 8, .budget = 61},
                                     {.n = 8, .window = 8, .budget = 4},
                                     {.n = 30, .window = 8, .budget = 3},
                                     {.n = 31, .window = 0, .budget = 0},
                                     {.n = 50, .window = 8, .budget = 1000},
                                     {.n = 300, .window = 1, .budget = 299},
                                     {.n = 2, .window = 1, .budget = 2},
                                     {.n = 60, .window = 8, .budget = -1}});
  }
};

std::string Describe(const TopKCase& c) {
  const auto [n_kv_heads, levels] = c;
  std::ostringstream name;
  name << "kv" << n_kv_heads << "_levels" << levels;
  return name.str();
}

TEST_P(TokenTopKGpuTest, KvHeadRowsMatchTwin) {
  const auto [n_kv_heads, levels] = GetParam();
  const testing::HostScoredBatch batch = Batch();
  std::mt19937 rng(n_kv_heads * 1000 + levels);
  const std::vector<float> scores =
      testing::TiedScores(static_cast<size_t>(batch.total_prefix()) * n_kv_heads, levels, rng);
  const size_t row_count = static_cast<size_t>(batch.total_keep()) * n_kv_heads;
  size_t scratch_bytes = 0;
  ASSERT_CUDA_OK(SelectionScratchBytes(batch.total_prefix() * n_kv_heads,
                                       batch.num_seqs() * n_kv_heads, &scratch_bytes));

  testing::DeviceScoredBatch d_batch(batch);
  DeviceBuffer<float> d_scores(scores);
  DeviceBuffer<int32_t> d_rows(row_count);
  DeviceBuffer<unsigned char> d_scratch(scratch_bytes);
  const KvHeadSelectParams device_params{.kv_scores = d_scores.data(),
                                         .prefixes = d_batch.view,
                                         .n_kv_heads = n_kv_heads,
                                         .cu_kept = d_batch.cu_keep.data(),
                                         .kept_rows = d_rows.data(),
                                         .scratch = d_scratch.data(),
                                         .scratch_bytes = scratch_bytes};
  ASSERT_CUDA_OK(LaunchSelectKvHeadRows(device_params, nullptr));

  std::vector<int32_t> expected(row_count);
  reference::SelectKvHeadRows({.kv_scores = scores.data(),
                               .prefixes = batch.HostView(),
                               .n_kv_heads = n_kv_heads,
                               .cu_kept = batch.cu_keep.data(),
                               .kept_rows = expected.data()});
  EXPECT_EQ(d_rows.ToHost(), expected) << Describe(GetParam());

  KvHeadSelectParams short_scratch = device_params;
  short_scratch.scratch_bytes = scratch_bytes - 1;
  EXPECT_EQ(LaunchSelectKvHeadRows(short_scratch, nullptr), cudaErrorInvalidValue);
}

TEST_P(TokenTopKGpuTest, PropagatedRowsMatchTwin) {
  const auto [n_kv_heads, levels] = GetParam();
  const testing::HostScoredBatch batch = Batch();
  std::mt19937 rng(n_kv_heads * 1000 + levels + 1);
  // Sums over the KV heads of tied scores stay tied.
  const std::vector<float> totals =
      testing::TiedScores(static_cast<size_t>(batch.total_prefix()), levels * n_kv_heads, rng);
  size_t scratch_bytes = 0;
  ASSERT_CUDA_OK(SelectionScratchBytes(batch.total_prefix(), batch.num_seqs(), &scratch_bytes));

  testing::DeviceScoredBatch d_batch(batch);
  DeviceBuffer<float> d_totals(totals);
  DeviceBuffer<int32_t> d_rows(batch.total_keep());
  DeviceBuffer<unsigned char> d_scratch(scratch_bytes);
  const PropagationSelectParams device_params{.totals = d_totals.data(),
                                              .prefixes = d_batch.view,
                                              .cu_keep = d_batch.cu_keep.data(),
                                              .rows = d_rows.data(),
                                              .scratch = d_scratch.data(),
                                              .scratch_bytes = scratch_bytes};
  ASSERT_CUDA_OK(LaunchSelectPropagatedRows(device_params, nullptr));

  std::vector<int32_t> expected(batch.total_keep());
  reference::SelectPropagatedRows({.totals = totals.data(),
                                   .prefixes = batch.HostView(),
                                   .cu_keep = batch.cu_keep.data(),
                                   .rows = expected.data()});
  EXPECT_EQ(d_rows.ToHost(), expected) << Describe(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Shapes, TokenTopKGpuTest,
                         ::testing::Combine(::testing::Values(3, 8), ::testing::Values(3, 1 << 20)),
                         [](const auto& info) { return Describe(info.param); });

// The twin's order, which the kernels reproduce: best first, ties to the earlier token, then the
// window; propagation ascending.
TEST(TokenTopKTwinTest, OrderIsRankThenWindowAndAscendingForPropagation) {
  const testing::HostScoredBatch batch =
      testing::MakeScoredBatch({{.n = 8, .window = 2, .budget = 6}});
  const std::vector<float> scores = {0.5f, 2.0f, 0.5f, 1.0f, 2.0f, 0.0f};
  std::vector<int32_t> rows(6);
  reference::SelectKvHeadRows({.kv_scores = scores.data(),
                               .prefixes = batch.HostView(),
                               .n_kv_heads = 1,
                               .cu_kept = batch.cu_keep.data(),
                               .kept_rows = rows.data()});
  EXPECT_EQ(rows, (std::vector<int32_t>{1, 4, 3, 0, 6, 7}));
  reference::SelectPropagatedRows({.totals = scores.data(),
                                   .prefixes = batch.HostView(),
                                   .cu_keep = batch.cu_keep.data(),
                                   .rows = rows.data()});
  EXPECT_EQ(rows, (std::vector<int32_t>{0, 1, 3, 4, 6, 7}));
}

}  // namespace
}  // namespace kvserve::kernels
