// kvserve's --gpu-memory-fraction: accepted in every build (unused without CUDA), a share of the
// device's free memory in (0, 1], and a bad value is a one-line error naming the flag.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/runtime/backend_factory.h"
#include "server/server_config.h"

namespace kvserve::server {
namespace {

ConfigParse Parse(std::vector<const char*> args, ServerConfig& config) {
  args.insert(args.begin(), "kvserve");
  return ParseServerConfig(args, config);
}

TEST(ServerGpuMemoryFractionTest, DefaultsToTheBackendsDefault) {
  ServerConfig c;
  const ConfigParse p = Parse({"--model", "m"}, c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.gpu_memory_fraction, kDefaultGpuMemoryFraction);
}

TEST(ServerGpuMemoryFractionTest, ReadsAFraction) {
  ServerConfig c;
  const ConfigParse p = Parse({"--model", "m", "--gpu-memory-fraction", "0.5"}, c);
  ASSERT_TRUE(p.run) << p.message;
  EXPECT_EQ(c.gpu_memory_fraction, 0.5);

  ServerConfig all;
  ASSERT_TRUE(Parse({"--model", "m", "--gpu-memory-fraction", "1"}, all).run);
  EXPECT_EQ(all.gpu_memory_fraction, 1.0);
}

TEST(ServerGpuMemoryFractionTest, OutsideZeroToOneIsAOneLineError) {
  for (const char* value : {"1.5", "0", "-0.25", "half"}) {
    ServerConfig c;
    const ConfigParse p = Parse({"--model", "m", "--gpu-memory-fraction", value}, c);
    EXPECT_FALSE(p.run) << value;
    EXPECT_NE(p.exit_code, 0) << value;
    EXPECT_EQ(p.message.find('\n'), std::string::npos) << p.message;
    EXPECT_EQ(p.message.rfind("kvserve: error: ", 0), 0u) << p.message;
    EXPECT_NE(p.message.find("--gpu-memory-fraction"), std::string::npos) << p.message;
  }
}

}  // namespace
}  // namespace kvserve::server
