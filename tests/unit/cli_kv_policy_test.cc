// kvserve-cli generate with --kv-policy and its --kv-* flags: the JSON `kv` stats, and a one-line
// error naming the flag for every invalid value.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/cli_run.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

std::string Stories() {
  return "--model " + Stories260KModelPath() + " --tokenizer " + Stories260KTokenizerPath();
}

// A prompt of `n` ids for --prompt-ids.
std::string PromptIds(int n) {
  std::string ids;
  for (int32_t id : RandomPrompt(1, n, 512)) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(id);
  }
  return ids;
}

nlohmann::json GenerateJson(const std::string& flags, int prompt_tokens = 100) {
  const CliRun r = RunCli("generate " + Stories() + " --prompt-ids " + PromptIds(prompt_tokens) +
                          " --max-tokens 6 --format json " + flags);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

TEST(CliKvPolicyTest, FastKvReportsKeptTokensTspTokensAndFlopsFraction) {
  const nlohmann::json j = GenerateJson("--kv-policy fastkv");
  const nlohmann::json& kv = j["kv"];
  EXPECT_EQ(kv["policy"], "fastkv");
  // N = 100: ⌊100 · 0.1⌋ = 10 per layer (T = 20, ⌊20 · 0.1 / 0.2⌋ = 10), + 5 decoded.
  EXPECT_EQ(kv["kept_tokens"], std::vector<int>(5, 15));
  EXPECT_EQ(kv["tsp_tokens"], 20);
  EXPECT_GT(kv["prefill_flops_fraction"].get<double>(), 0.2);
  EXPECT_LT(kv["prefill_flops_fraction"].get<double>(), 0.6);
}

TEST(CliKvPolicyTest, FullReportsNoTspAndTheWholePrefill) {
  const nlohmann::json j = GenerateJson("");
  EXPECT_EQ(j["kv"]["policy"], "full");
  EXPECT_FALSE(j["kv"].contains("tsp_tokens"));
  EXPECT_EQ(j["kv"]["prefill_flops_fraction"], 1.0);
  EXPECT_EQ(j["kv"]["kept_tokens"], std::vector<int>(5, 105));
}

TEST(CliKvPolicyTest, EveryFlagReachesThePolicy) {
  const nlohmann::json j = GenerateJson(
      "--kv-policy fastkv --kv-tsp-layer 2 --kv-tsp-len 30 --kv-budget 12 --kv-window 4 "
      "--kv-pool avg --kv-pool-kernel 5 --kv-retain-rate 0.2 --kv-tsp-rate 0.5");
  EXPECT_EQ(j["kv"]["kept_tokens"], std::vector<int>(5, 12 + 5));
  EXPECT_EQ(j["kv"]["tsp_tokens"], 30);
  // The tiered flags: a budget of 4 pages of 16 (1 sink, 1 recent, 2 retrieved) over ~100 tokens.
  const nlohmann::json tiered = GenerateJson(
      "--kv-policy freekv --kv-page-size 16 --kv-budget 64 --kv-sink 4 --kv-recent 8 --kv-tau 0.5");
  EXPECT_EQ(tiered["kv"]["policy"], "freekv");
  EXPECT_GT(tiered["kv"]["recalled_pages"].get<int>(), 0);
  // A budget covering the prompt: snapkv generates what full does.
  EXPECT_EQ(GenerateJson("--kv-policy snapkv --kv-budget 100")["token_ids"],
            GenerateJson("--kv-policy full")["token_ids"]);
  EXPECT_EQ(GenerateJson("--kv-policy snapkv --kv-retain-rate 0.5")["kv"]["kept_tokens"],
            std::vector<int>(5, 55));
}

TEST(CliKvPolicyTest, InvalidValuesGetOneLineNamingTheFlag) {
  const std::pair<std::string, std::string> cases[] = {
      {"--kv-policy nope", "--kv-policy 'nope' is not a KV policy"},
      {"--kv-policy freekv --kv-sink 64 --kv-recent 64 --kv-budget 128",
       "--kv-budget must exceed sink + recent"},
      {"--kv-policy freekv --kv-budget 1024",
       "--kv-budget must be <= the model's context (512), got 1024"},
      {"--kv-policy fastkv --kv-tsp-rate 1.5", "--kv-tsp-rate must be in (0, 1]"},
      {"--kv-policy fastkv --kv-tsp-layer 5", "--kv-tsp-layer must be in [0, 4]"},
      {"--kv-policy fastkv --kv-tsp-len -1", "--kv-tsp-len must be >= 0"},
      {"--kv-policy snapkv --kv-retain-rate 0", "--kv-retain-rate must be in"},
      {"--kv-policy fastkv --kv-retain-rate 0.5", "--kv-retain-rate must be <="},
      {"--kv-policy fastkv --kv-budget 64 --kv-tsp-len 32", "--kv-budget must be <="},
      {"--kv-policy snapkv --kv-budget -5", "--kv-budget must be >= 0"},
      {"--kv-policy snapkv --kv-window 0", "--kv-window must be >= 1, got 0"},
      {"--kv-policy snapkv --kv-pool-kernel 6", "--kv-pool-kernel must be odd"},
      {"--kv-policy quest --kv-page-size 0", "--kv-page-size must be >= 1"},
      {"--kv-policy freekv --kv-sink -1", "--kv-sink must be >= 0"},
      {"--kv-policy freekv --kv-recent -1", "--kv-recent must be >= 0"},
      {"--kv-policy freekv --kv-tau 2", "--kv-tau must be in [-1, 1]"},
      // A flag the policy has no option for is refused, not ignored.
      {"--kv-tau 0.5", "--kv-tau is not an option of the full policy"},
      {"--kv-policy quest --kv-tau 0.5", "--kv-tau is not an option of the quest policy"},
      {"--kv-policy snapkv --kv-tsp-len 4", "--kv-tsp-len is not an option of the snapkv policy"},
  };
  for (const auto& [flags, fragment] : cases) {
    const CliRun r = RunCli("generate " + Stories() + " --prompt-ids 1,2,3 " + flags);
    EXPECT_EQ(r.exit_code, 1) << flags;
    EXPECT_NE(r.out.find("kvserve-cli: error: " + fragment), std::string::npos) << flags << "\n"
                                                                                << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << flags << "\n" << r.out;
  }
  // Pooling names are checked while parsing the flags.
  const CliRun pool = RunCli("generate " + Stories() + " --prompt-ids 1 --kv-pool sum");
  EXPECT_NE(pool.exit_code, 0);
  EXPECT_NE(pool.out.find("--kv-pool"), std::string::npos) << pool.out;
}

}  // namespace
}  // namespace kvserve::testing
