// FreeKV over gRPC on a real server: a request's kv_policy reaches the scheduler's host tier and
// the CPU backend's sparse decode; the stream equals `kvserve-cli generate` with the same flags;
// the final message, GetServerStatus and /metrics report the host tier and the recalls.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_join.h"
#include "tests/support/command_runner.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/server_process.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

// 8 slots of 8 tokens per layer and KV head: 1 sink page, 2 recent, 5 retrieved.
constexpr char kKvFlags[] =
    "--kv-policy freekv --kv-page-size 8 --kv-budget 64 --kv-sink 8 --kv-recent 16 --kv-tau 0.9";

pb::GenerateRequest FreeKvRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  pb::GenerateRequest r = GreedyIdsRequest(prompt, max_tokens);
  r.mutable_sampling()->set_ignore_eos(true);
  pb::FreeKvOptions* kv = r.mutable_kv_policy()->mutable_freekv();
  kv->set_budget(64);
  kv->set_sink(8);
  kv->set_recent(16);
  kv->set_tau(0.9f);
  return r;
}

std::vector<int32_t> Prompt() {
  std::vector<int32_t> p = {1};
  for (int i = 1; i < 200; ++i) p.push_back(3 + (i * 37) % 500);
  return p;
}

TEST(GrpcTieredTest, FreeKvStreamEqualsOfflineAndReportsTheHostTier) {
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(), {"--page-size", "8", "--kv-host-memory", "64MiB"});
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();

  const std::vector<int32_t> prompt = Prompt();
  const StreamResult streamed = GenerateAll(*stub, FreeKvRequest(prompt, 60));
  ASSERT_TRUE(streamed.status.ok()) << Describe(streamed.status);
  ASSERT_TRUE(streamed.final.has_value());
  const pb::KvStats& kv = streamed.final->kv();
  EXPECT_EQ(kv.policy(), "freekv");
  EXPECT_EQ(kv.decode_steps(), 59u);
  EXPECT_GT(kv.host_tokens(), 0u);
  EXPECT_GT(kv.recalled_pages(), 0u);
  EXPECT_GT(kv.recalled_bytes(), 0u);
  EXPECT_LT(kv.resident_fraction(), 0.5);

  const CommandResult offline = RunCommand(
      std::string(KVSERVE_BIN_DIR) + "/kvserve-cli generate --model " + Stories260KModelPath() +
      " --tokenizer " + Stories260KTokenizerPath() + " --prompt-ids " + absl::StrJoin(prompt, ",") +
      " --max-tokens 60 --ignore-eos " + kKvFlags + " --format json");
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  const auto json = nlohmann::json::parse(offline.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << offline.out;
  EXPECT_EQ(streamed.tokens, json["token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(json["kv"]["policy"], "freekv");
  EXPECT_EQ(json["kv"]["recalled_pages"].get<uint64_t>(), kv.recalled_pages());
  EXPECT_EQ(json["kv"]["corrections"].get<uint64_t>(), kv.corrections());

  // Both tiers are back to zero; the host tier has its budget's pages.
  auto status = GetServerStatus(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(Tier(*status, "host").pages_used(), 0u);
  EXPECT_GT(Tier(*status, "host").pages_total(), 0u);
  EXPECT_EQ(Tier(*status, "host").page_size(), 8u);
  EXPECT_EQ(DevicePagesUsed(*status), 0u);

  const MetricsPage page = ScrapeMetrics((*server)->metrics_port());
  EXPECT_EQ(page.Value("kvserve_kv_recall_bytes_total"), static_cast<double>(kv.recalled_bytes()));
  EXPECT_EQ(page.Value("kvserve_freekv_corrections_total"), static_cast<double>(kv.corrections()));
  EXPECT_EQ(page.Value("kvserve_kv_host_usage_ratio"), 0);
}

TEST(GrpcTieredTest, AnotherPageSizeOrATooSmallBudgetIsInvalidArgumentNamingTheField) {
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(), {"--page-size", "8"});
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();

  pb::GenerateRequest request = FreeKvRequest(Prompt(), 4);
  request.mutable_kv_policy()->mutable_freekv()->set_page_size(16);
  StreamResult r = GenerateAll(*stub, request);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(),
            "kv_policy.freekv.page_size must be the server's KV page size (8), got 16")
      << r.status.error_message();

  request = FreeKvRequest(Prompt(), 4);
  request.mutable_kv_policy()->mutable_freekv()->set_budget(16);
  r = GenerateAll(*stub, request);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("kv_policy.freekv.budget"), std::string::npos)
      << r.status.error_message();
}

}  // namespace
}  // namespace kvserve::testing
