// kvserve-bench's open-loop mode (`vllm bench serve`'s options and result fields) against a real
// server: every request accounted for, vLLM's keys, a per-policy breakdown for a policy mix,
// goodput against SLOs, the JSONL and ShareGPT datasets, and --sweep's CSV and PNG.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/command_runner.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace fs = std::filesystem;

class LoadBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    char dir[] = "/tmp/kvserve-bench-test-XXXXXX";
    dir_ = mkdtemp(dir);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  CommandResult Bench(const std::string& flags) const {
    return RunCommand("cd " + dir_.string() + " && " + std::string(KVSERVE_BIN_DIR) +
                      "/kvserve-bench --server " + server_->address() +
                      " --disable-tqdm --warmup 1 " + flags);
  }
  static std::vector<nlohmann::json> Lines(const CommandResult& r) {
    std::vector<nlohmann::json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  std::unique_ptr<ServerProcess> server_;
  fs::path dir_;
};

TEST_F(LoadBenchTest, RandomDatasetWithAPolicyMixReportsVllmFields) {
  const CommandResult r = Bench(
      "--num-prompts 30 --random-input-len 48 --random-output-len 12 --random-range-ratio 0.5 "
      "--request-rate 200 --max-concurrency 8 --kv-policy-mix full:1,snapkv:1,quest:1,freekv:1 "
      "--goodput ttft:60000 tpot:60000");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = Lines(r);
  ASSERT_EQ(results.size(), 1u) << r.out;
  const nlohmann::json& j = results[0];
  EXPECT_EQ(j["completed"], 30);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_LE(j["max_concurrent_requests"].get<int>(), 8);
  EXPECT_EQ(j["request_rate"], 200.0);
  for (const char* key : {"duration", "total_input_tokens", "total_output_tokens",
                          "request_throughput", "output_throughput", "total_token_throughput",
                          "request_goodput", "max_output_tokens_per_s"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* stat : {"mean", "median", "std", "p50", "p90", "p99"}) {
      EXPECT_TRUE(j.contains(std::string(stat) + "_" + metric + "_ms")) << stat << metric;
    }
    EXPECT_LE(j[std::string("p50_") + metric + "_ms"], j[std::string("p99_") + metric + "_ms"]);
  }
  // Goodput SLOs of a minute: every request is good.
  EXPECT_DOUBLE_EQ(j["request_goodput"].get<double>(), j["request_throughput"].get<double>());
  // ignore_eos: each request generated its drawn length, 6..18 tokens.
  EXPECT_GE(j["total_output_tokens"].get<int>(), 30 * 6);
  EXPECT_LE(j["total_output_tokens"].get<int>(), 30 * 18);
  int per_policy = 0;
  for (const char* policy : {"full", "snapkv", "quest", "freekv"}) {
    ASSERT_TRUE(j["per_kv_policy"].contains(policy)) << j["per_kv_policy"].dump();
    per_policy += j["per_kv_policy"][policy]["completed"].get<int>();
  }
  EXPECT_EQ(per_policy, 30);
}

TEST_F(LoadBenchTest, GoodputCountsOnlyRequestsWithinTheSlos) {
  // A TTFT SLO no request can meet.
  const CommandResult r = Bench(
      "--num-prompts 10 --random-input-len 32 --random-output-len 8 "
      "--goodput ttft:0.000001");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = Lines(r).at(0);
  EXPECT_EQ(j["completed"], 10);
  EXPECT_EQ(j["request_goodput"], 0.0);
  const CommandResult bad = Bench("--num-prompts 2 --goodput latency:5");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("ttft, tpot or e2el"), std::string::npos) << bad.err;
}

TEST_F(LoadBenchTest, JsonlAndShareGptPromptsAreSentAsText) {
  std::ofstream(dir_ / "prompts.jsonl") << R"({"prompt": "Once upon a time", "output_len": 5})"
                                        << "\n"
                                        << R"({"prompt": "The little dog", "output_len": 7})"
                                        << "\n";
  CommandResult r = Bench(
      "--dataset-name jsonl --dataset-path prompts.jsonl --num-prompts 4 "
      "--ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = Lines(r).at(0);
  EXPECT_EQ(j["completed"], 4);
  EXPECT_EQ(j["total_output_tokens"], 2 * 5 + 2 * 7);  // two passes over two prompts
  EXPECT_GT(j["total_input_tokens"].get<int>(), 4 * 3);

  std::ofstream(dir_ / "sharegpt.json") << R"([
    {"conversations": [{"from": "human", "value": "Tell me a story"},
                       {"from": "gpt", "value": "Once upon a time there was a cat."}]},
    {"conversations": [{"from": "gpt", "value": "no human turn: skipped"}]}])";
  r = Bench("--dataset-name sharegpt --dataset-path sharegpt.json --num-prompts 3 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Lines(r).at(0);
  EXPECT_EQ(j["completed"], 3);
  EXPECT_EQ(j["total_output_tokens"], 3 * 8);  // 33 characters of reply / 4
}

TEST_F(LoadBenchTest, SweepWritesACsvRowPerRateAndAPng) {
  const CommandResult r = Bench(
      "--num-prompts 12 --random-input-len 32 --random-output-len 8 "
      "--sweep 50,inf --sweep-csv sweep.csv --sweep-png sweep.png");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r).size(), 2u);
  std::ifstream csv(dir_ / "sweep.csv");
  std::string header, row;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("request_rate,completed,failed,request_throughput,output_throughput", 0),
            0u)
      << header;
  int rows = 0;
  while (std::getline(csv, row)) ++rows;
  EXPECT_EQ(rows, 2);
  std::ifstream png(dir_ / "sweep.png", std::ios::binary);
  char magic[8] = {};
  png.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "not a PNG";
}

TEST_F(LoadBenchTest, LongDatasetNeedsAModelWithTheContext) {
  const CommandResult r = Bench("--dataset-name long --num-prompts 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("context (512)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvserve::testing
