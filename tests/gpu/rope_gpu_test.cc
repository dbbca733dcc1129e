// LaunchRope against its CPU twin on fused QKV rows (V must stay untouched), both pair
// conventions, full and partial rotary dims, positions up to the table's end and past it.
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/rope.h"
#include "kernels/rope.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;
using testing::RandomBf16;

// (head_dim, rope_dim, pairs)
using RopeCase = std::tuple<int, int, RopePairs>;

class RopeGpuTest : public testing::GpuTestWithParam<RopeCase> {};

// The case as a name: test names (for --gtest_filter) and failure messages.
std::string Describe(const RopeCase& c) {
  const auto [head_dim, rope_dim, pairs] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_rope" << rope_dim
       << (pairs == RopePairs::kAdjacent ? "_adjacent" : "_half_split");
  return name.str();
}

TEST_P(RopeGpuTest, MatchesTwinOnFusedQkvRows) {
  const auto [head_dim, rope_dim, pairs] = GetParam();
  const int n_heads = 9;
  const int n_kv_heads = 3;
  const int max_positions = 8192;
  const int stride = (n_heads + 2 * n_kv_heads) * head_dim;
  // The last two rows lie outside the table and must come back unchanged.
  const std::vector<int32_t> positions = {
      0, 1, 2, 31, 1000, 4097, max_positions - 1, 7, max_positions, -1};
  const int rows = static_cast<int>(positions.size());
  std::mt19937 rng(head_dim + rope_dim);
  std::vector<Bf16> qkv = RandomBf16(static_cast<size_t>(rows) * stride, rng);
  std::vector<float> table(static_cast<size_t>(max_positions) * rope_dim);
  BuildRopeTable(max_positions, rope_dim, 10000.0f, table.data());

  DeviceBuffer<Bf16> d_qkv(qkv);
  DeviceBuffer<int32_t> d_positions(positions);
  DeviceBuffer<float> d_table(table);
  const RopeParams shape{.q_row_stride = stride,
                         .n_heads = n_heads,
                         .k_row_stride = stride,
                         .n_kv_heads = n_kv_heads,
                         .rows = rows,
                         .max_positions = max_positions,
                         .head_dim = head_dim,
                         .rope_dim = rope_dim,
                         .pairs = pairs};
  RopeParams device_params = shape;
  device_params.q = d_qkv.data();
  device_params.k = d_qkv.data() + n_heads * head_dim;
  device_params.positions = d_positions.data();
  device_params.table = d_table.data();
  ASSERT_CUDA_OK(LaunchRope(device_params, nullptr));

  RopeParams host_params = shape;
  host_params.q = qkv.data();
  host_params.k = qkv.data() + n_heads * head_dim;
  host_params.positions = positions.data();
  host_params.table = table.data();
  reference::Rope(host_params);

  testing::ExpectAllNear(d_qkv.ToHost(), qkv, 2e-3f, 1.6e-2f, Describe(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeGpuTest,
                         ::testing::Values(RopeCase{64, 64, RopePairs::kAdjacent},
                                           RopeCase{64, 64, RopePairs::kHalfSplit},
                                           RopeCase{128, 128, RopePairs::kAdjacent},
                                           RopeCase{128, 128, RopePairs::kHalfSplit},
                                           RopeCase{64, 32, RopePairs::kAdjacent},
                                           RopeCase{128, 64, RopePairs::kHalfSplit}),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
