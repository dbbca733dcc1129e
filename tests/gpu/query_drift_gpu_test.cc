// LaunchQueryDrift against its CPU twin (the CPU policy's cosine and threshold), exactly: flags,
// the checked and corrected counts of heads and of sequence steps, q_t kept as the next q_{t-1},
// over steps with a query that barely moves, one that turns round, a zero query (cosine 1), a
// sequence on its first sparse step (every head flagged, nothing counted), a dense one (left
// alone), and tau 1 (always).
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_reference/query_drift.h"
#include "kernels/query_drift.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

class QueryDriftGpuTest : public testing::GpuTest {};

TEST_F(QueryDriftGpuTest, FlagsCountsAndKeptQueryEqualTheTwin) {
  const int n_kv = 3, group = 3, n_heads = n_kv * group, d = 64, p = 16, slots = 4;
  const int num_seqs = 4;
  const size_t row = static_cast<size_t>(n_heads) * d;
  std::mt19937 rng(5);
  // Sequence 2 is dense (4 pages); the others sparse. Each keeps its query and counters at the
  // state row the pool gave it, here in reverse order.
  const std::vector<int32_t> lens = {9 * p, 5 * p + 1, 4 * p, 30 * p};
  const std::vector<int32_t> rows = {3, 2, 1, 0};
  std::vector<Bf16> last = testing::RandomBf16(num_seqs * row, rng);
  std::vector<uint8_t> has_last = {0, 1, 1, 1};  // by row: sequence 3 has none yet
  DeviceBuffer<int32_t> d_lens(lens), d_rows(rows);
  DeviceBuffer<Bf16> d_last(last);
  DeviceBuffer<uint8_t> d_has_last(has_last), d_flags(num_seqs * n_kv);
  // [checks, corrections, checked steps, corrected steps][state row]
  std::vector<int32_t> counters(4 * num_seqs, 0);
  DeviceBuffer<int32_t> d_counters(counters);
  int flagged = 0, kept = 0;
  for (int step = 0; step < 4; ++step) {
    const float tau = step == 3 ? 1.0f : 0.9f;
    // Small moves, except KV head 1 of sequence 0 turning round and a zero head in sequence 1.
    std::vector<Bf16> q(num_seqs * row);
    std::normal_distribution<float> noise(0.0f, step == 1 ? 0.8f : 0.05f);
    for (size_t e = 0; e < q.size(); ++e) {
      q[e] = ToBf16(ToFloat(last[rows[e / row] * row + e % row]) + noise(rng));
    }
    for (int g = group; g < 2 * group; ++g) {
      for (int c = 0; c < d; ++c) q[g * d + c] = ToBf16(-ToFloat(last[rows[0] * row + g * d + c]));
    }
    for (int c = 0; c < d; ++c) q[row + c] = Bf16{};
    DeviceBuffer<Bf16> d_q(q);
    QueryDriftParams params{.q = d_q.data(),
                            .q_row_stride = static_cast<int>(row),
                            .last_q = d_last.data(),
                            .has_last_q = d_has_last.data(),
                            .state_rows = d_rows.data(),
                            .num_seqs = num_seqs,
                            .n_heads = n_heads,
                            .n_kv_heads = n_kv,
                            .head_dim = d,
                            .kv_lens = d_lens.data(),
                            .page_size = p,
                            .slots = slots,
                            .tau = tau,
                            .flags = d_flags.data(),
                            .checks = d_counters.data(),
                            .corrections = d_counters.data() + num_seqs,
                            .checked_steps = d_counters.data() + 2 * num_seqs,
                            .corrected_steps = d_counters.data() + 3 * num_seqs};
    ASSERT_CUDA_OK(LaunchQueryDrift(params, nullptr));
    std::vector<uint8_t> flags(num_seqs * n_kv, 7);
    params.q = q.data();
    params.last_q = last.data();
    params.has_last_q = has_last.data();
    params.state_rows = rows.data();
    params.flags = flags.data();
    params.checks = counters.data();
    params.corrections = counters.data() + num_seqs;
    params.checked_steps = counters.data() + 2 * num_seqs;
    params.corrected_steps = counters.data() + 3 * num_seqs;
    reference::QueryDrift(params);
    const std::string at = "step " + std::to_string(step);
    EXPECT_EQ(d_flags.ToHost(), flags) << at;
    EXPECT_EQ(d_counters.ToHost(), counters) << at;
    testing::ExpectBitsEqual(d_last.ToHost(), last, at);
    EXPECT_EQ(d_has_last.ToHost(), has_last) << at;
    EXPECT_EQ(flags[1], 1) << at;         // turned round
    EXPECT_EQ(flags[2 * n_kv], 0) << at;  // dense
    for (uint8_t f : flags) flagged += f;
    kept += has_last[rows[3]];
  }
  auto total = [&](int k) {
    int sum = 0;
    for (int r = 0; r < num_seqs; ++r) sum += counters[k * num_seqs + r];
    return sum;
  };
  EXPECT_EQ(total(0), 2 * n_kv + 3 * 3 * n_kv);  // sequence 3 is checked from step 1
  EXPECT_EQ(counters[rows[3]], 3 * n_kv);
  EXPECT_EQ(counters[rows[2]], 0);  // dense
  EXPECT_GT(total(1), 0);
  EXPECT_LT(total(1), total(0));
  EXPECT_GT(flagged, total(1));  // the first sparse step's flags are not corrections
  EXPECT_EQ(kept, 4);
  // Sequence steps: 0 and 1 checked at all 4 steps, 3 from step 1; tau 1 corrects them all.
  EXPECT_EQ(total(2), 2 * 4 + 3);
  EXPECT_EQ(counters[2 * num_seqs + rows[0]], 4);
  EXPECT_GT(total(3), 3);
  EXPECT_LT(total(3), total(2));
}

}  // namespace
}  // namespace kvserve::kernels
