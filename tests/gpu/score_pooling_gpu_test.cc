// LaunchScorePooling against its CPU twin, bit for bit: max and avg pooling with kernels 1, 3 and
// 7 (edges, prefixes shorter than the kernel, a prefix of one token), GQA groups 1 and 3, the
// summed score for propagation, a window-0 sequence (skipped) and one with no prefix.
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/score_pooling.h"
#include "kernels/score_pooling.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/scored_batch_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (pooling, kernel, group)
using PoolingCase = std::tuple<ScorePooling, int, int>;

class ScorePoolingGpuTest : public testing::GpuTestWithParam<PoolingCase> {};

std::string Describe(const PoolingCase& c) {
  const auto [pooling, kernel, group] = c;
  std::ostringstream name;
  name << (pooling == ScorePooling::kMax ? "max" : "avg") << kernel << "_group" << group;
  return name.str();
}

TEST_P(ScorePoolingGpuTest, MatchesTwinBitForBit) {
  const auto [pooling, kernel, group] = GetParam();
  const int n_kv_heads = 3;
  const int n_heads = n_kv_heads * group;
  const testing::HostScoredBatch batch = testing::MakeScoredBatch({{.n = 77, .window = 8},
                                                                   {.n = 40, .window = 0},
                                                                   {.n = 600, .window = 8},
                                                                   {.n = 8, .window = 8},
                                                                   {.n = 9, .window = 8},
                                                                   {.n = 12, .window = 8}});
  std::mt19937 rng(static_cast<int>(pooling) * 100 + kernel * 10 + group);
  // Window scores as the kernel sees them: sums of probabilities, some tied.
  std::vector<float> heads =
      testing::TiedScores(static_cast<size_t>(batch.total_prefix()) * n_heads, 16, rng);
  std::uniform_real_distribution<float> uniform(0.0f, 3.0f);
  for (size_t i = 0; i < heads.size(); i += 3) heads[i] = uniform(rng);
  const size_t kv_count = static_cast<size_t>(batch.total_prefix()) * n_kv_heads;
  const ScorePoolingParams shape{
      .n_heads = n_heads, .n_kv_heads = n_kv_heads, .pooling = pooling, .kernel = kernel};

  testing::DeviceScoredBatch d_batch(batch);
  DeviceBuffer<float> d_heads(heads);
  DeviceBuffer<float> d_kv(kv_count);
  DeviceBuffer<float> d_totals(batch.total_prefix());
  ScorePoolingParams device_params = shape;
  device_params.head_scores = d_heads.data();
  device_params.prefixes = d_batch.view;
  device_params.kv_scores = d_kv.data();
  device_params.totals = d_totals.data();
  ASSERT_CUDA_OK(LaunchScorePooling(device_params, nullptr));

  std::vector<float> kv(kv_count);
  std::vector<float> totals(batch.total_prefix());
  ScorePoolingParams host_params = shape;
  host_params.head_scores = heads.data();
  host_params.prefixes = batch.HostView();
  host_params.kv_scores = kv.data();
  host_params.totals = totals.data();
  reference::ScorePoolingByKvHead(host_params);

  EXPECT_EQ(d_kv.ToHost(), kv) << Describe(GetParam());
  EXPECT_EQ(d_totals.ToHost(), totals) << Describe(GetParam());

  // Without totals the KV-head scores are the same.
  DeviceBuffer<float> d_kv_only(kv_count);
  device_params.kv_scores = d_kv_only.data();
  device_params.totals = nullptr;
  ASSERT_CUDA_OK(LaunchScorePooling(device_params, nullptr));
  EXPECT_EQ(d_kv_only.ToHost(), kv) << Describe(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Shapes, ScorePoolingGpuTest,
                         ::testing::Combine(::testing::Values(ScorePooling::kMax,
                                                              ScorePooling::kAvg),
                                            ::testing::Values(1, 3, 7), ::testing::Values(1, 3)),
                         [](const auto& info) { return Describe(info.param); });

class ScorePoolingLimitsGpuTest : public testing::GpuTest {};

TEST_F(ScorePoolingLimitsGpuTest, RejectsEvenKernelsAndUngroupedHeads) {
  ScorePoolingParams params{.n_heads = 9, .n_kv_heads = 3, .kernel = 4};
  EXPECT_EQ(LaunchScorePooling(params, nullptr), cudaErrorInvalidValue);
  params.kernel = 7;
  params.n_heads = 8;
  EXPECT_EQ(LaunchScorePooling(params, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace kvserve::kernels
