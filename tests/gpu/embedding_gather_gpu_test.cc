// LaunchEmbeddingGather against its CPU twin: rows copied exactly, bad ids give zero rows.
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu_reference/embedding.h"
#include "kernels/embedding.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;
using testing::RandomBf16;

class EmbeddingGatherGpuTest : public testing::GpuTestWithParam<int> {};

TEST_P(EmbeddingGatherGpuTest, MatchesTwinInFp32AndBf16) {
  const int dim = GetParam();
  const int vocab = 1003;
  std::mt19937 rng(11);
  const std::vector<Bf16> table = RandomBf16(static_cast<size_t>(vocab) * dim, rng);
  std::vector<int32_t> ids = {0, vocab - 1, 17, 17, -1, vocab, 512};
  std::uniform_int_distribution<int32_t> any_id(0, vocab - 1);
  for (int i = 0; i < 30; ++i) ids.push_back(any_id(rng));
  const int rows = static_cast<int>(ids.size());

  std::vector<float> expected_f32(static_cast<size_t>(rows) * dim);
  std::vector<Bf16> expected_bf16(expected_f32.size());
  reference::EmbeddingGather(table.data(), vocab, dim, ids.data(), rows, expected_f32.data());
  reference::EmbeddingGather(table.data(), vocab, dim, ids.data(), rows, expected_bf16.data());

  DeviceBuffer<Bf16> d_table(table);
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<float> d_f32(expected_f32.size());
  DeviceBuffer<Bf16> d_bf16(expected_bf16.size());
  ASSERT_CUDA_OK(
      LaunchEmbeddingGather(d_table.data(), vocab, dim, d_ids.data(), rows, d_f32.data(), nullptr));
  ASSERT_CUDA_OK(LaunchEmbeddingGather(d_table.data(), vocab, dim, d_ids.data(), rows,
                                       d_bf16.data(), nullptr));
  EXPECT_EQ(d_f32.ToHost(), expected_f32);  // a bf16 to fp32 widening is exact
  testing::ExpectBitsEqual(d_bf16.ToHost(), expected_bf16, "bf16 rows");
}

// SmolLM2's hidden size, Llama-3.1-8B's, and an odd one.
INSTANTIATE_TEST_SUITE_P(Dims, EmbeddingGatherGpuTest, ::testing::Values(576, 4096, 37),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace kvserve::kernels
