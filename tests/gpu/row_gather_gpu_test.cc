// LaunchRowGather against its CPU twin, bit for bit: token-selective propagation's compact batch
// (each sequence's kept rows, in its own indices, with their positions) and the plain logits-row
// gather.
#include <random>
#include <vector>

#include "kernels/cpu_reference/row_gather.h"
#include "kernels/row_gather.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

class RowGatherGpuTest : public testing::GpuTest {};

TEST_F(RowGatherGpuTest, GathersPropagatedRowsAndPositionsPerSequence) {
  std::mt19937 rng(7);
  const int dim = 576;  // SmolLM2's hidden size
  const std::vector<int32_t> cu_src = {0, 40, 41, 141, 150};
  // Kept rows in each sequence's own indices: a subset, the only row, a subset, all rows.
  std::vector<int32_t> rows = {0, 3, 9, 30, 31, 32, 39, 0, 2, 50, 51, 97, 98, 99};
  std::vector<int32_t> cu_dst = {0, 7, 8, 14};
  for (int r = 0; r < 9; ++r) rows.push_back(r);
  cu_dst.push_back(static_cast<int32_t>(rows.size()));
  const int n = static_cast<int>(rows.size());
  const std::vector<Bf16> src = testing::RandomBf16(static_cast<size_t>(cu_src.back()) * dim, rng);
  std::vector<int32_t> positions(cu_src.back());
  for (int i = 0; i < cu_src.back(); ++i) positions[i] = 1000 + 3 * i;

  DeviceBuffer<Bf16> d_src(src);
  DeviceBuffer<Bf16> d_dst(static_cast<size_t>(n) * dim);
  DeviceBuffer<int32_t> d_rows(rows);
  DeviceBuffer<int32_t> d_cu_src(cu_src);
  DeviceBuffer<int32_t> d_cu_dst(cu_dst);
  DeviceBuffer<int32_t> d_positions(positions);
  DeviceBuffer<int32_t> d_out_positions(n);
  ASSERT_CUDA_OK(LaunchRowGather({.src = d_src.data(),
                                  .src_stride = dim,
                                  .dst = d_dst.data(),
                                  .dst_stride = dim,
                                  .cols = dim,
                                  .rows = d_rows.data(),
                                  .n = n,
                                  .cu_src = d_cu_src.data(),
                                  .cu_dst = d_cu_dst.data(),
                                  .num_seqs = 4,
                                  .src_ids = d_positions.data(),
                                  .dst_ids = d_out_positions.data()},
                                 nullptr));

  std::vector<Bf16> expected(static_cast<size_t>(n) * dim);
  std::vector<int32_t> expected_positions(n);
  reference::RowGather({.src = src.data(),
                        .src_stride = dim,
                        .dst = expected.data(),
                        .dst_stride = dim,
                        .cols = dim,
                        .rows = rows.data(),
                        .n = n,
                        .cu_src = cu_src.data(),
                        .cu_dst = cu_dst.data(),
                        .num_seqs = 4,
                        .src_ids = positions.data(),
                        .dst_ids = expected_positions.data()});
  testing::ExpectBitsEqual(d_dst.ToHost(), expected, "propagated rows");
  EXPECT_EQ(d_out_positions.ToHost(), expected_positions);
  // Sequence 2's row 50 is global row 91, at position 1000 + 3 * 91.
  EXPECT_EQ(expected_positions[9], 1000 + 3 * 91);
}

TEST_F(RowGatherGpuTest, GathersLogitRowsWithStrides) {
  std::mt19937 rng(8);
  const std::vector<Bf16> src = testing::RandomBf16(30 * 100, rng);
  const std::vector<int32_t> rows = {29, 0, 5, 5};
  DeviceBuffer<Bf16> d_src(src);
  DeviceBuffer<Bf16> d_dst(4 * 72);
  DeviceBuffer<int32_t> d_rows(rows);
  ASSERT_CUDA_OK(
      LaunchRowGather(d_src.data(), 100, d_dst.data(), 72, 70, d_rows.data(), 4, nullptr));
  const std::vector<Bf16> got = d_dst.ToHost();
  for (int i = 0; i < 4; ++i) {
    for (int c = 0; c < 70; ++c) {
      ASSERT_EQ(got[i * 72 + c].bits, src[rows[i] * 100 + c].bits) << i << " " << c;
    }
  }
  EXPECT_EQ(LaunchRowGather(d_src.data(), 60, d_dst.data(), 72, 70, d_rows.data(), 4, nullptr),
            cudaErrorInvalidValue);  // stride below the columns
}

}  // namespace
}  // namespace kvserve::kernels
