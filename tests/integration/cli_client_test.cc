// `kvserve-cli client` against a real server: the same flags and JSON as `kvserve-cli generate`,
// text streamed to stdout, and gRPC errors as "kvserve-cli: error: CODE: message" with exit 1.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/command_runner.h"
#include "tests/support/server_process.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

std::string Cli() { return std::string(KVSERVE_BIN_DIR) + "/kvserve-cli "; }

std::string StoriesFlags() {
  return "--model " + Stories260KModelPath() + " --tokenizer " + Stories260KTokenizerPath();
}

nlohmann::json ParseJson(const CommandResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

class CliClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::string Client() const { return Cli() + "client --server " + server_->address() + " "; }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(CliClientTest, JsonEqualsOfflineGenerate) {
  for (const std::string flags :
       {"--prompt 'Once upon a time' --max-tokens 30", "--prompt-ids 1,403,407 --max-tokens 25"}) {
    const nlohmann::json offline = ParseJson(
        RunCommand(Cli() + "generate " + StoriesFlags() + " " + flags + " --format json"));
    const nlohmann::json served = ParseJson(RunCommand(Client() + flags + " --format json"));
    for (const char* key :
         {"token_ids", "text", "prompt_tokens", "completion_tokens", "finish_reason"}) {
      EXPECT_EQ(served[key], offline[key]) << flags << ": " << key;
    }
    EXPECT_EQ(served["kv"]["policy"], offline["kv"]["policy"]) << flags;
    EXPECT_EQ(served["kv"]["kept_tokens"], offline["kv"]["kept_tokens"]) << flags;
    for (const char* key : {"prefill_ms", "ttft_ms", "decode_tokens_per_s"}) {
      EXPECT_TRUE(served.contains(key)) << key;
    }
  }
}

TEST_F(CliClientTest, StopTokenIdEndsTheRequestAsOffline) {
  // The text is not compared: the server leaves the stop token's text out (as it does a matched
  // stop string), `generate` keeps it.
  const std::string flags = "--prompt 'Once upon a time' --max-tokens 20 --stop-token-ids 298";
  const nlohmann::json offline =
      ParseJson(RunCommand(Cli() + "generate " + StoriesFlags() + " " + flags + " --format json"));
  const nlohmann::json served = ParseJson(RunCommand(Client() + flags + " --format json"));
  for (const char* key : {"token_ids", "completion_tokens", "finish_reason"}) {
    EXPECT_EQ(served[key], offline[key]) << key;
  }
  EXPECT_EQ(served["finish_reason"], "stop");
  EXPECT_EQ(served["token_ids"].back(), 298);
}

TEST_F(CliClientTest, KvPolicyFlagsReachTheServer) {
  const std::string flags =
      "--prompt-ids 1,403,407,261,378,432,383,286,261,376,298,315,421,395,317,426,338,401,396,267 "
      "--max-tokens 12 --kv-policy snapkv --kv-budget 12 --kv-window 4";
  const nlohmann::json offline =
      ParseJson(RunCommand(Cli() + "generate " + StoriesFlags() + " " + flags + " --format json"));
  const nlohmann::json served = ParseJson(RunCommand(Client() + flags + " --format json"));
  EXPECT_EQ(served["kv"]["policy"], "snapkv");
  EXPECT_EQ(served["kv"]["kept_tokens"], offline["kv"]["kept_tokens"]);
  EXPECT_EQ(served["token_ids"], offline["token_ids"]);
}

TEST_F(CliClientTest, TextFormatPrintsTheGeneratedText) {
  const nlohmann::json offline =
      ParseJson(RunCommand(Cli() + "generate " + StoriesFlags() +
                           " --prompt 'Once upon a time' --max-tokens 30 "
                           "--format json"));
  const CommandResult streamed =
      RunCommand(Client() + "--prompt 'Once upon a time' --max-tokens 30");
  EXPECT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, offline["text"].get<std::string>() + "\n");
  const CommandResult whole =
      RunCommand(Client() + "--prompt 'Once upon a time' --max-tokens 30 --non-streaming");
  EXPECT_EQ(whole.out, streamed.out);
}

TEST_F(CliClientTest, GrpcErrorsPrintCodeAndMessageAndExitOne) {
  const CommandResult invalid = RunCommand(Client() + "--prompt-ids 1,999");
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_EQ(invalid.err.rfind("kvserve-cli: error: INVALID_ARGUMENT: ", 0), 0u) << invalid.err;
  EXPECT_NE(invalid.err.find("token_ids.ids[1]"), std::string::npos) << invalid.err;

  const CommandResult policy = RunCommand(Client() + "--prompt hi --kv-policy lru");
  EXPECT_EQ(policy.exit_code, 1);
  // An unknown policy is refused before anything is sent: the oneof has no member for it.
  EXPECT_EQ(policy.err.rfind("kvserve-cli: error: --kv-policy 'lru' is not a KV policy", 0), 0u)
      << policy.err;

  const CommandResult unreachable =
      RunCommand(Cli() + "client --server 127.0.0.1:1 --prompt hi --timeout 5");
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_EQ(unreachable.err.rfind("kvserve-cli: error: UNAVAILABLE: ", 0), 0u) << unreachable.err;
}

TEST_F(CliClientTest, StatusAndModelInfoPrintJson) {
  const nlohmann::json status = ParseJson(RunCommand(Client() + "--status"));
  EXPECT_EQ(status["running"], 0);
  EXPECT_EQ(status["ready"], true);
  ASSERT_TRUE(status["kv_tiers"].is_array());
  EXPECT_FALSE(status["kv_tiers"].empty());
  const nlohmann::json info = ParseJson(RunCommand(Client() + "--model-info"));
  EXPECT_EQ(info["n_layers"], 5);
  EXPECT_EQ(info["vocab_size"], 512);
  EXPECT_EQ(info["backend"], "cpu");
}

TEST_F(CliClientTest, LoadBenchReportsEveryRequestPerLevel) {
  const CommandResult r =
      RunCommand(std::string(KVSERVE_BIN_DIR) + "/kvserve-bench --server " + server_->address() +
                 " --concurrency 1,4 --requests 8 --prompt-tokens 16 "
                 "--max-tokens 8 --warmup 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> levels;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) levels.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(levels.size(), 2u) << r.out;
  EXPECT_EQ(levels[0]["concurrency"], 1);
  EXPECT_EQ(levels[1]["concurrency"], 4);
  for (const auto& level : levels) {
    EXPECT_EQ(level["completed"], 8);
    EXPECT_EQ(level["output_tokens"], 8 * 8);
    EXPECT_EQ(level["ttft_ms"]["count"], 8);
    EXPECT_EQ(level["itl_ms"]["count"], 8 * 7);
    EXPECT_GT(level["output_tokens_per_s"].get<double>(), 0);
  }
}

}  // namespace
}  // namespace kvserve::testing
