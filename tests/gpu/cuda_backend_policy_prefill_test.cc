// kvserve-gpu-bench's policy prefill path on the CUDA backend (tools/bench/policy_prefill.h):
// every policy goes through the engine API (a request's KvPolicyOptions) and the CUDA backend runs
// full, snapkv and fastkv itself: each is measured, fastkv with the FLOP model's fraction of a
// prefill whose later layers ran only the propagated rows.
#include <gtest/gtest.h>

#include "tests/gpu/cuda_backend_fixture.h"
#include "tools/bench/policy_decode.h"
#include "tools/bench/policy_prefill.h"

namespace kvserve::testing {
namespace {

using CudaBackendPolicyPrefillTest = kernels::testing::GpuTest;

TEST_F(CudaBackendPolicyPrefillTest, FullSnapKvAndFastKvAreMeasured) {
  auto backend = CudaBackend::CreateSynthetic("smollm2-135m", 7,
                                              {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  const ModelConfig config = (*backend)->config();
  bench::PolicyPrefillOptions o;
  o.policies = {"snapkv", "full", "fastkv"};
  o.prompt_lengths = {48};
  o.repeats = 1;
  const std::vector<bench::PolicyPrefillRun> runs = bench::RunPolicyPrefill(**backend, o);
  ASSERT_EQ(runs.size(), 3u);
  const auto lines = bench::PolicyPrefillLines(config, o, runs, {{48, 1.0}});
  ASSERT_EQ(lines.size(), 3u);

  ASSERT_TRUE(runs[1].status.ok()) << runs[1].status;
  ASSERT_EQ(runs[1].ttft_ms.size(), 1u);
  EXPECT_GT(runs[1].ttft_ms[0], 0);
  EXPECT_DOUBLE_EQ(lines[1]["speedup_vs_full"].get<double>(), 1.0);

  for (size_t i : {size_t{0}, size_t{2}}) {
    const bench::PolicyPrefillRun& run = runs[i];
    const nlohmann::json& line = lines[i];
    EXPECT_EQ(line["kv_policy"], run.policy);
    ASSERT_TRUE(run.status.ok()) << run.policy << ": " << run.status;
    // Measured, with the FLOP model's fraction matching what the engine ran.
    ASSERT_EQ(run.ttft_ms.size(), 1u) << run.policy;
    EXPECT_TRUE(line["speedup_vs_full"].is_number()) << line;
    EXPECT_DOUBLE_EQ(line["engine_flops_fraction"].get<double>(),
                     line["predicted_flops_fraction"].get<double>())
        << line;
  }
  // fastkv propagated ⌊48 · 0.2⌋ = 9 rows past its TSP layer: less than full's work.
  EXPECT_EQ(runs[2].kv.tsp_tokens, 9);
  EXPECT_LT(lines[2]["engine_flops_fraction"].get<double>(), 0.75) << lines[2];
}

// The policy decode benchmark on the CUDA backend: dense and tiered decode are timed after every
// first token, and freekv_oracle runs through the backend's recall switch, which is off again
// after it, so freekv's line gets its step time over the oracle's.
TEST_F(CudaBackendPolicyPrefillTest, PolicyDecodeTimesFreeKvAgainstItsOracle) {
  auto backend = CudaBackend::CreateSynthetic("smollm2-135m", 7,
                                              {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  CudaBackend& cuda = **backend;
  bench::PolicyDecodeOptions o{.policies = {"full", "freekv_oracle", "freekv"},
                               .context = 112,
                               .batches = {2},
                               .new_tokens = 3,
                               .budget = 64,
                               .page_size = 16};
  int switched = 0;
  bool on = false;
  const auto runs = bench::RunPolicyDecode(cuda, o, [&](bool value) {
    ++switched;
    on = value;
    cuda.SetRecallOracle(value);
  });
  EXPECT_EQ(switched, 2);
  EXPECT_FALSE(on);
  ASSERT_EQ(runs.size(), 3u);
  for (const bench::PolicyDecodeRun& run : runs) {
    ASSERT_TRUE(run.status.ok()) << run.policy << ": " << run.status;
    EXPECT_EQ(run.decode_tokens, 2 * 2) << run.policy;
  }
  const auto lines = bench::PolicyDecodeLines(o, runs);
  EXPECT_TRUE(lines[2]["step_over_oracle"].is_number()) << lines[2];
  EXPECT_LT(lines[2]["resident_fraction"].get<double>(), 1.0) << lines[2];
  EXPECT_GT(lines[2]["recalled_bytes"].get<int64_t>(), 0) << lines[2];
}

}  // namespace
}  // namespace kvserve::testing
