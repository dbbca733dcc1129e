// kvserve-gpu-bench's policy decode benchmark, the parts that need no GPU: its flags and their
// errors, the policy loop on the CPU backend (decode timed after every first token; a policy the
// backend cannot run, freekv_oracle here, fails alone) and the JSON lines and their ratios.
#include "tools/bench/policy_decode.h"

#include <gtest/gtest.h>

#include "engine/base/status_macros.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::bench {
namespace {

absl::StatusOr<PolicyDecodeOptions> Parse(std::vector<std::string> args) {
  PolicyDecodeOptions o;
  CLI::App app;
  AddPolicyDecodeFlags(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  KVSERVE_RETURN_IF_ERROR(ValidatePolicyDecodeOptions(o));
  return o;
}

TEST(PolicyDecodeTest, FlagsGiveThePoliciesAndTheIssuesDefaults) {
  auto o = Parse({"--decode-policy", "full,fastkv,quest,freekv,fastkv_freekv,freekv_oracle"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->policies.size(), 6u);
  EXPECT_EQ(o->context, 32768);
  EXPECT_EQ(o->new_tokens, 128);
  EXPECT_EQ(o->batches, (std::vector<int>{1, 8}));
  auto b =
      Parse({"--decode-policy", "freekv", "--decode-batches", "1,8,64", "--decode-budget", "4096"});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->batches, (std::vector<int>{1, 8, 64}));
  EXPECT_EQ(b->budget, 4096);
}

TEST(PolicyDecodeTest, BadFlagsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--decode-policy", "magic"}, "--decode-policy: unknown policy 'magic'"},
      {{"--decode-policy", "full,full"}, "--decode-policy: 'full' named twice"},
      {{"--decode-policy", "full", "--decode-batches", "0"}, "--decode-batches"},
      {{"--decode-policy", "full", "--decode-new-tokens", "1"}, "--decode-new-tokens"},
      {{"--decode-policy", "full", "--decode-context", "0"}, "--decode-context"},
      {{"--decode-policy", "freekv", "--decode-budget", "64"}, "--decode-budget"},
  };
  for (const auto& [args, message] : bad) {
    auto o = Parse(args);
    ASSERT_FALSE(o.ok()) << args[1];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find(message), std::string_view::npos) << o.status();
  }
}

TEST(PolicyDecodeTest, CpuBackendRunsEveryPolicyAndTheOracleFailsAlone) {
  testing::CpuModel m = testing::LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  PolicyDecodeOptions o{.policies = {"full", "fastkv", "freekv_oracle", "quest", "freekv"},
                        .context = 200,
                        .batches = {1, 3},
                        .new_tokens = 6,
                        .budget = 64,
                        .page_size = 16};
  ASSERT_TRUE(ValidatePolicyDecodeOptions(o).ok());
  const std::vector<PolicyDecodeRun> runs = RunPolicyDecode(*m.backend, o, nullptr);
  ASSERT_EQ(runs.size(), 10u);
  for (const PolicyDecodeRun& run : runs) {
    if (run.policy == kFreeKvOracle) {
      EXPECT_EQ(run.status.code(), absl::StatusCode::kFailedPrecondition) << run.status;
      continue;
    }
    ASSERT_TRUE(run.status.ok()) << run.policy << ": " << run.status;
    // Every prompt prefills in the first step: the rest is decode, 5 tokens each.
    EXPECT_EQ(run.decode_tokens, run.batch * (o.new_tokens - 1)) << run.policy;
    EXPECT_GT(run.decode_ms, 0) << run.policy;
    if (IsTieredKvPolicy(run.policy)) {
      EXPECT_EQ(run.kv.decode_steps, o.new_tokens - 1) << run.policy;
    }
  }
  const std::vector<nlohmann::json> lines = PolicyDecodeLines(o, runs);
  ASSERT_EQ(lines.size(), runs.size());
  for (const nlohmann::json& line : lines) {
    const std::string policy = line["kv_policy"];
    SCOPED_TRACE(line.dump());
    EXPECT_EQ(line["bench"], "policy_decode");
    EXPECT_EQ(line["context_tokens"], 200);
    if (policy == kFreeKvOracle) {
      EXPECT_EQ(line["error_code"], "FAILED_PRECONDITION");
      EXPECT_FALSE(line.contains("tokens_per_s"));
      continue;
    }
    EXPECT_GT(line["tokens_per_s"].get<double>(), 0);
    EXPECT_GT(line["step_ms"].get<double>(), 0);
    EXPECT_TRUE(line["speedup_vs_full"].is_number());
    if (policy == "full") {
      EXPECT_DOUBLE_EQ(line["speedup_vs_full"].get<double>(), 1.0);
    }
    if (policy == "quest" || policy == "freekv") {
      EXPECT_EQ(line["budget_tokens"], 64);
      EXPECT_LT(line["resident_fraction"].get<double>(), 0.5);  // 64 of 205 tokens
      EXPECT_GT(line["recalled_bytes"].get<int64_t>(), 0);
    }
    if (policy == "freekv") {
      EXPECT_TRUE(line["step_over_oracle"].is_null());
    }
  }
}

}  // namespace
}  // namespace kvserve::bench
