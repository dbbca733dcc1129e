// kvserve's configuration: flags, KVSERVE_* environment variables and the --config file, their
// precedence, and one-line errors for bad values.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "server/server_config.h"
#include "tests/support/test_paths.h"

namespace kvserve::server {
namespace {

ConfigParse Parse(std::vector<const char*> args, ServerConfig& config) {
  args.insert(args.begin(), "kvserve");
  return ParseServerConfig(args, config);
}

// Sets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServerConfigTest, DefaultsMatchTheDesign) {
  ServerConfig c;
  const ConfigParse p = Parse({"--model", "m.gguf"}, c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.model, "m.gguf");
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 50051);
  EXPECT_EQ(c.metrics_port, 9090);
  EXPECT_EQ(c.backend, "cpu");
  EXPECT_EQ(c.max_batch_tokens, 2048);
  EXPECT_EQ(c.max_running, 64);
  EXPECT_EQ(c.max_queued_requests, 256);
  EXPECT_EQ(c.page_size, 32);
  EXPECT_EQ(c.kv_cache_memory, int64_t{2} << 30);
  EXPECT_EQ(c.default_kv_policy, "full");
  EXPECT_EQ(c.drain_timeout_s, 30);
  EXPECT_EQ(c.log_format, "text");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.stream_buffer, 64);
  EXPECT_TRUE(c.cuda_graphs);
  EXPECT_TRUE(c.ttft_buckets.empty());
  EXPECT_TRUE(c.itl_buckets.empty());
}

TEST(ServerConfigTest, ReadsFlagsSizesAndBuckets) {
  ServerConfig c;
  const ConfigParse p =
      Parse({"--model", "synthetic:smollm2-135m", "--port", "0", "--metrics-port", "-1",
             "--kv-cache-memory", "512MiB", "--ttft-buckets", "0.01, 0.1,1", "--itl-buckets",
             "0.002,0.004", "--default-kv-policy", "snapkv", "--log-format", "json"},
            c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.metrics_port, -1);
  EXPECT_EQ(c.kv_cache_memory, int64_t{512} << 20);
  EXPECT_EQ(c.ttft_buckets, (std::vector<double>{0.01, 0.1, 1}));
  EXPECT_EQ(c.itl_buckets, (std::vector<double>{0.002, 0.004}));
  EXPECT_EQ(c.default_kv_policy, "snapkv");
  EXPECT_EQ(c.log_format, "json");

  ServerConfig decimal;
  ASSERT_TRUE(Parse({"--model", "m", "--kv-cache-memory", "1GB"}, decimal).run);
  EXPECT_EQ(decimal.kv_cache_memory, 1'000'000'000);

  ServerConfig eager;
  ASSERT_TRUE(Parse({"--model", "m", "--cuda-graphs", "false"}, eager).run);
  EXPECT_FALSE(eager.cuda_graphs);
}

TEST(ServerConfigTest, InvalidValuesGiveOneLineErrors) {
  const std::vector<std::vector<const char*>> bad = {
      {},  // --model missing
      {"--model", "m", "--port", "70000"},
      {"--model", "m", "--backend", "tpu"},
      {"--model", "m", "--max-batch-tokens", "0"},
      {"--model", "m", "--kv-cache-memory", "lots"},
      {"--model", "m", "--ttft-buckets", "0.1,0.05"},
      {"--model", "m", "--itl-buckets", "fast"},
      {"--model", "m", "--default-kv-policy", "magic"},
      {"--model", "m", "--log-level", "chatty"},
      {"--model", "m", "--cuda-graphs", "sometimes"},
      {"--model", "m", "--max-running", "4096"},  // more than --max-batch-tokens
      {"--model", "m", "--no-such-flag"},
  };
  for (const auto& args : bad) {
    ServerConfig c;
    const ConfigParse p = Parse(args, c);
    std::string joined;
    for (const char* a : args) joined += std::string(a) + " ";
    EXPECT_FALSE(p.run) << joined;
    EXPECT_NE(p.exit_code, 0) << joined;
    EXPECT_EQ(p.message.find('\n'), std::string::npos) << p.message;
    EXPECT_EQ(p.message.rfind("kvserve: error: ", 0), 0u) << p.message;
  }
}

TEST(ServerConfigTest, HelpExitsZero) {
  ServerConfig c;
  const ConfigParse p = Parse({"--help"}, c);
  EXPECT_FALSE(p.run);
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_NE(p.message.find("--kv-cache-memory"), std::string::npos);
  EXPECT_NE(p.message.find("KVSERVE_MAX_BATCH_TOKENS"), std::string::npos);
}

TEST(ServerConfigTest, CommandLineBeatsEnvironmentBeatsConfigFile) {
  const std::string dir = testing::MakeTempDir();
  const std::string file = dir + "/kvserve.toml";
  std::ofstream(file) << "model = \"from-file.gguf\"\nport = 1111\nmax-running = 8\n"
                         "page-size = 16\nkv-cache-memory = \"1GiB\"\n";
  ScopedEnv port("KVSERVE_PORT", "2222");
  ScopedEnv running("KVSERVE_MAX_RUNNING", "9");
  ServerConfig c;
  const ConfigParse p = Parse({"--config", file.c_str(), "--max-running", "10"}, c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.model, "from-file.gguf");  // file only
  EXPECT_EQ(c.page_size, 16);            // file only
  EXPECT_EQ(c.kv_cache_memory, int64_t{1} << 30);
  EXPECT_EQ(c.port, 2222);       // environment over file
  EXPECT_EQ(c.max_running, 10);  // command line over environment
}

TEST(ServerConfigTest, EnvironmentAloneConfigures) {
  ScopedEnv model("KVSERVE_MODEL", "env.gguf");
  ScopedEnv buckets("KVSERVE_TTFT_BUCKETS", "0.5,1");
  ScopedEnv memory("KVSERVE_KV_CACHE_MEMORY", "64MiB");
  ServerConfig c;
  const ConfigParse p = Parse({}, c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.model, "env.gguf");
  EXPECT_EQ(c.ttft_buckets, (std::vector<double>{0.5, 1}));
  EXPECT_EQ(c.kv_cache_memory, int64_t{64} << 20);
}

TEST(ServerConfigTest, MissingConfigFileIsAnError) {
  ServerConfig c;
  const ConfigParse p = Parse({"--config", "/nonexistent/kvserve.toml", "--model", "m"}, c);
  EXPECT_FALSE(p.run);
  EXPECT_NE(p.exit_code, 0);
}

TEST(ServerConfigTest, FormatBytesPicksTheLargestExactUnit) {
  EXPECT_EQ(FormatBytes(int64_t{2} << 30), "2GiB");
  EXPECT_EQ(FormatBytes(int64_t{512} << 20), "512MiB");
  EXPECT_EQ(FormatBytes(1000), "1000B");
}

}  // namespace
}  // namespace kvserve::server
