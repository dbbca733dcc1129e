// kvserve-gpu-bench's policy prefill path on the CUDA backend (tools/bench/policy_prefill.h):
// every policy goes through the engine API (a request's KvPolicyOptions) and is either measured or,
// while the backend refuses it, reported in its own error line; the others are measured anyway.
#include <gtest/gtest.h>

#include "tests/gpu/cuda_backend_fixture.h"
#include "tools/bench/policy_prefill.h"

namespace kvserve::testing {
namespace {

using CudaBackendPolicyPrefillTest = kernels::testing::GpuTest;

TEST_F(CudaBackendPolicyPrefillTest, EveryPolicyIsMeasuredOrGetsItsOwnErrorLine) {
  auto backend = CudaBackend::CreateSynthetic("smollm2-135m", 7,
                                              {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  const ModelConfig config = (*backend)->config();
  bench::PolicyPrefillOptions o;
  // A refused policy first: the runs after it still work.
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
    if (!run.status.ok()) {  // the backend does not serve this policy (yet)
      EXPECT_NE(line["error"].get<std::string>().find(run.policy), std::string::npos) << line;
      EXPECT_NE(line["error"].get<std::string>().find("cuda"), std::string::npos) << line;
      EXPECT_FALSE(line.contains("ttft_ms"));
      continue;
    }
    // Served: measured, with the FLOP model's fraction matching what the engine ran.
    ASSERT_EQ(run.ttft_ms.size(), 1u) << run.policy;
    EXPECT_TRUE(line["speedup_vs_full"].is_number()) << line;
    EXPECT_DOUBLE_EQ(line["engine_flops_fraction"].get<double>(),
                     line["predicted_flops_fraction"].get<double>())
        << line;
  }
}

}  // namespace
}  // namespace kvserve::testing
