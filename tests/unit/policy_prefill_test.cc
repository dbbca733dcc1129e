// kvserve-gpu-bench's policy prefill benchmark, the parts that need no GPU: its flags, the FLOP
// model's prediction from the options, the SDPA reference reader, the JSON lines and their ratios,
// and the policy loop on the CPU backend (errors stay with their policy).
#include "tools/bench/policy_prefill.h"

#include <gtest/gtest.h>

#include <sstream>

#include "engine/model/synthetic_model.h"
#include "tests/support/model_fixtures.h"
#include "tools/common/kv_prefill_options.h"

namespace kvserve::bench {
namespace {

ModelConfig Llama8B() {
  auto c = SyntheticModelConfig("llama-3.1-8b");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

absl::StatusOr<PolicyPrefillOptions> Parse(std::vector<std::string> args) {
  PolicyPrefillOptions o;
  CLI::App app;
  AddPolicyPrefillFlags(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (auto s = ValidatePolicyPrefillOptions(o); !s.ok()) return s;
  return o;
}

TEST(PolicyPrefillTest, FlagsGiveThePoliciesLengthsAndIssueDefaults) {
  auto o = Parse({"--kv-policy", "full,snapkv,fastkv", "--policy-lengths", "8192,32768",
                  "--sdpa-reference", "torch.jsonl"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->policies, (std::vector<std::string>{"full", "snapkv", "fastkv"}));
  EXPECT_EQ(o->prompt_lengths, (std::vector<int>{8192, 32768}));
  EXPECT_EQ(o->sdpa_reference, "torch.jsonl");
  EXPECT_EQ(o->sdpa_bench, "prefill");
  EXPECT_EQ(o->repeats, 3);
  EXPECT_FLOAT_EQ(o->kv.tsp_rate, 0.2f);  // issue 12: τ = 0.2, TSP layer n_layers / 2 - 1
  EXPECT_EQ(o->kv.tsp_layer, -1);
  EXPECT_EQ(EffectiveTspLayer(Llama8B(), o->kv), 15);

  auto tuned = Parse({"--kv-policy", "fastkv", "--kv-tsp-rate", "0.5", "--kv-tsp-layer", "3",
                      "--policy-repeats", "1", "--sdpa-bench", "prefill_model"});
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_FLOAT_EQ(tuned->kv.tsp_rate, 0.5f);
  EXPECT_EQ(EffectiveTspLayer(Llama8B(), tuned->kv), 3);
  EXPECT_EQ(tuned->repeats, 1);
  EXPECT_EQ(tuned->sdpa_bench, "prefill_model");

  auto none = Parse({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->policies.empty());  // the benchmark is off unless asked for
}

TEST(PolicyPrefillTest, BadFlagsNameTheFlag) {
  auto unknown = Parse({"--kv-policy", "full,fastkvv"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("--kv-policy: unknown policy 'fastkvv'"),
            std::string::npos)
      << unknown.status();
  auto twice = Parse({"--kv-policy", "full,full"});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("named twice"), std::string::npos);
  auto length = Parse({"--kv-policy", "full", "--policy-lengths", "8192,0"});
  ASSERT_FALSE(length.ok());
  EXPECT_NE(length.status().message().find("--policy-lengths"), std::string::npos);
  auto repeats = Parse({"--kv-policy", "full", "--policy-repeats", "0"});
  ASSERT_FALSE(repeats.ok());
  EXPECT_FALSE(Parse({"--policy-lengths", "many"}).ok());
}

TEST(PolicyPrefillTest, FastKvRowsAreTspAfterTheTspLayer) {
  const ModelConfig c = Llama8B();
  FastKvOptions fastkv;
  const std::vector<LayerRows> rows = PredictedPrefillRows(c, fastkv, 32768);
  ASSERT_EQ(rows.size(), 32u);
  const int t = 6553;  // ⌊32768 · 0.2⌋
  for (int l = 0; l < 15; ++l) EXPECT_EQ(rows[l].attention, 32768) << l;
  EXPECT_EQ(rows[15].attention, 32768);
  EXPECT_EQ(rows[15].mlp, t);  // gathered right after the TSP layer's attention
  for (int l = 16; l < 32; ++l) {
    EXPECT_EQ(rows[l].attention, t) << l;
    EXPECT_EQ(rows[l].mlp, t) << l;
  }
  // §9 of research/fastkv.md: about 0.57 of the full FLOPs at 32K, so a predicted ~1.75x.
  const double fraction = PrefillFlopsFraction(c, rows, 32768);
  EXPECT_GT(fraction, 0.5);
  EXPECT_LT(fraction, 0.6);

  // snapkv and full prefill everything; a prompt below FastKV's minimum propagates everything.
  for (const char* name : {"full", "snapkv"}) {
    const KvPolicyOptions o = DefaultKvPolicyOptions(*ParseKvPolicyKind(name));
    EXPECT_DOUBLE_EQ(PrefillFlopsFraction(c, PredictedPrefillRows(c, o, 32768), 32768), 1.0);
  }
  EXPECT_DOUBLE_EQ(PrefillFlopsFraction(c, PredictedPrefillRows(c, fastkv, 10), 10), 1.0);
  // A constant TSP length wins over the rate.
  fastkv.tsp_len = 2048;
  EXPECT_EQ(PredictedPrefillRows(c, fastkv, 32768).back().attention, 2048);
}

TEST(PolicyPrefillTest, SdpaReferenceTakesTorchLinesOfTheNamedBench) {
  std::istringstream in(
      R"({"impl":"torch","bench":"prefill","prompt_tokens":8192,"ttft_ms":250.5}
{"impl":"torch","bench":"prefill_model","prompt_tokens":8192,"ttft_ms":270.0}
{"impl":"kvserve","bench":"prefill","prompt_tokens":8192,"ttft_ms":1.0}

{"impl":"torch","bench":"prefill","prompt_tokens":65536,"skipped":true,"reason":"x"}
{"impl":"torch","bench":"prefill","prompt_tokens":32768,"ttft_ms":1380})");
  auto ttft = ReadSdpaTtft(in, "prefill");
  ASSERT_TRUE(ttft.ok()) << ttft.status();
  EXPECT_EQ(*ttft, (std::map<int, double>{{8192, 250.5}, {32768, 1380.0}}));

  std::istringstream bad("{\"impl\":\"torch\"}\nTraceback (most recent call last):\n");
  auto broken = ReadSdpaTtft(bad, "prefill");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("line 2"), std::string::npos) << broken.status();
}

TEST(PolicyPrefillTest, LinesSetMeasuredRatiosBesideThePrediction) {
  const ModelConfig c = Llama8B();
  PolicyPrefillOptions o;
  o.policies = {"full", "snapkv", "fastkv"};
  const int n = 32768;
  std::vector<PolicyPrefillRun> runs = {
      {.policy = "full", .prompt_tokens = n, .ttft_ms = {1200, 1000, 1100}},
      {.policy = "snapkv",
       .prompt_tokens = n,
       .status = absl::UnimplementedError("kv policy 'snapkv' is not implemented on cuda")},
      {.policy = "fastkv", .prompt_tokens = n, .ttft_ms = {600, 500, 550}},
  };
  runs[2].kv.tsp_tokens = 6553;
  runs[2].kv.prefill_flops_fraction = 0.57;
  const auto lines = PolicyPrefillLines(c, o, runs, {{n, 1210.0}});
  ASSERT_EQ(lines.size(), 3u);

  const nlohmann::json& full = lines[0];
  EXPECT_EQ(full["bench"], "policy_prefill");
  EXPECT_EQ(full["kv_policy"], "full");
  EXPECT_DOUBLE_EQ(full["ttft_ms"].get<double>(), 1100);
  EXPECT_DOUBLE_EQ(full["ttft_ms_min"].get<double>(), 1000);
  EXPECT_DOUBLE_EQ(full["speedup_vs_full"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(full["predicted_speedup_vs_full"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(full["speedup_vs_sdpa"].get<double>(), 1.1);
  EXPECT_FALSE(full.contains("error"));

  const nlohmann::json& snapkv = lines[1];
  EXPECT_EQ(snapkv["kv_policy"], "snapkv");
  EXPECT_EQ(snapkv["error_code"], "UNIMPLEMENTED");
  EXPECT_NE(snapkv["error"].get<std::string>().find("snapkv"), std::string::npos);
  EXPECT_FALSE(snapkv.contains("ttft_ms"));
  EXPECT_DOUBLE_EQ(snapkv["predicted_speedup_vs_full"].get<double>(), 1.0);

  const nlohmann::json& fastkv = lines[2];
  const double fraction = PrefillFlopsFraction(c, PredictedPrefillRows(c, FastKvOptions{}, n), n);
  EXPECT_DOUBLE_EQ(fastkv["predicted_flops_fraction"].get<double>(), fraction);
  EXPECT_DOUBLE_EQ(fastkv["predicted_speedup_vs_full"].get<double>(), 1 / fraction);
  EXPECT_DOUBLE_EQ(fastkv["ttft_ms"].get<double>(), 550);
  EXPECT_DOUBLE_EQ(fastkv["full_ttft_ms"].get<double>(), 1100);
  EXPECT_DOUBLE_EQ(fastkv["speedup_vs_full"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(fastkv["speedup_vs_full_over_predicted"].get<double>(), 2.0 * fraction);
  EXPECT_DOUBLE_EQ(fastkv["sdpa_ttft_ms"].get<double>(), 1210);
  EXPECT_DOUBLE_EQ(fastkv["speedup_vs_sdpa"].get<double>(), 2.2);
  EXPECT_EQ(fastkv["tsp_layer"], 15);
  EXPECT_EQ(fastkv["predicted_tsp_tokens"], 6553);
  EXPECT_EQ(fastkv["tsp_tokens"], 6553);
  EXPECT_DOUBLE_EQ(fastkv["engine_flops_fraction"].get<double>(), 0.57);

  // Without full or the SDPA reference the ratios are null, not made up.
  runs[0].status = absl::InternalError("out of memory");
  const auto alone = PolicyPrefillLines(c, o, runs, {});
  EXPECT_TRUE(alone[2]["speedup_vs_full"].is_null());
  EXPECT_TRUE(alone[2]["speedup_vs_full_over_predicted"].is_null());
  EXPECT_TRUE(alone[2]["speedup_vs_sdpa"].is_null());
  EXPECT_TRUE(alone[2]["sdpa_ttft_ms"].is_null());
  EXPECT_DOUBLE_EQ(alone[2]["ttft_ms"].get<double>(), 550);

  // A run that succeeded without a timed sample has no figure to give.
  const PolicyPrefillRun untimed{.policy = "full", .prompt_tokens = n};
  const nlohmann::json none = PolicyPrefillLine(c, o.kv, untimed, nullptr, 1.0, "prefill");
  EXPECT_EQ(none["error"], "no timed runs");
  EXPECT_FALSE(none.contains("ttft_ms"));
}

// The loop through the engine on the CPU backend: every policy measured on the same prompts, the
// engine's FLOP fraction equal to the prediction from the options, and a failing length reported
// per policy without stopping the others.
TEST(PolicyPrefillTest, CpuBackendRunsEveryPolicyAndKeepsErrorsPerRun) {
  testing::CpuModel m = testing::LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  PolicyPrefillOptions o;
  o.policies = {"full", "snapkv", "fastkv"};
  const int too_long = m.config.context_length + 1;
  o.prompt_lengths = {200, too_long, 300};
  o.repeats = 2;
  const std::vector<PolicyPrefillRun> runs = RunPolicyPrefill(*m.backend, o);
  ASSERT_EQ(runs.size(), 9u);
  for (size_t i = 0; i < runs.size(); ++i) {
    const PolicyPrefillRun& run = runs[i];
    EXPECT_EQ(run.policy, o.policies[i % 3]);
    EXPECT_EQ(run.prompt_tokens, o.prompt_lengths[i / 3]);
    if (run.prompt_tokens == too_long) {
      EXPECT_FALSE(run.status.ok()) << run.policy;
      EXPECT_TRUE(run.ttft_ms.empty());
      continue;
    }
    ASSERT_TRUE(run.status.ok()) << run.policy << ": " << run.status;
    EXPECT_EQ(run.ttft_ms.size(), 2u);
    const KvPolicyOptions kv = *PrefillPolicyOptions(run.policy, o.kv);
    const double predicted = PrefillFlopsFraction(
        m.config, PredictedPrefillRows(m.config, kv, run.prompt_tokens), run.prompt_tokens);
    EXPECT_DOUBLE_EQ(run.kv.prefill_flops_fraction, predicted) << run.policy;
    if (run.policy == "fastkv") {
      EXPECT_LT(predicted, 1.0);
      EXPECT_EQ(run.kv.tsp_tokens,
                PredictedPrefillRows(m.config, kv, run.prompt_tokens).back().attention);
    }
  }
  const auto lines = PolicyPrefillLines(m.config, o, runs, {{200, 1.0}});
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_TRUE(lines[5]["error"].is_string());
  EXPECT_GT(lines[8]["speedup_vs_full"].get<double>(), 0);
  EXPECT_GT(lines[2]["speedup_vs_sdpa"].get<double>(), 0);
  EXPECT_TRUE(lines[8]["speedup_vs_sdpa"].is_null());  // no reference at 300
}

}  // namespace
}  // namespace kvserve::bench
