// tools/kvserve_client.py, the Python example client, against a real server: it streams what a
// C++ gRPC client gets. Skips where no python3 with the grpc module is installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/command_runner.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

// The repository root: KVSERVE_MODELS_DIR is its models/ folder.
std::string ClientScript() {
  return (std::filesystem::path(KVSERVE_MODELS_DIR).parent_path() / "tools/kvserve_client.py")
      .string();
}

// A python3 that can import grpc (Debian's python3-grpcio), or "".
std::string PythonWithGrpc() {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    if (RunCommand(std::string(python) + " -c 'import grpc' >/dev/null").exit_code == 0) {
      return python;
    }
  }
  return "";
}

TEST(PythonClientTest, StreamsWhatTheCppClientGets) {
  const std::string python = PythonWithGrpc();
  if (python.empty()) GTEST_SKIP() << "no python3 with the grpc module (python3-grpcio)";
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const StreamResult expected =
      GenerateAll(*(*server)->NewStub(), GreedyTextRequest("Once upon a time", 24));
  ASSERT_TRUE(expected.status.ok()) << Describe(expected.status);

  const std::string base = python + " " + ClientScript() + " --server " + (*server)->address() +
                           " --prompt 'Once upon a time' --max-tokens 24 --temperature 0";
  const CommandResult json = RunCommand(base + " --kv-policy full --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["token_ids"].get<std::vector<int32_t>>(), expected.tokens);
  EXPECT_EQ(j["text"], expected.text);
  EXPECT_EQ(j["finish_reason"], "max_tokens");
  EXPECT_EQ(j["kv"]["policy"], "full");

  const CommandResult text = RunCommand(base);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, expected.text + "\n");
}

TEST(PythonClientTest, ReportsGrpcErrorsAndExitsOne) {
  const std::string python = PythonWithGrpc();
  if (python.empty()) GTEST_SKIP() << "no python3 with the grpc module (python3-grpcio)";
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const CommandResult r = RunCommand(python + " " + ClientScript() + " --server " +
                                     (*server)->address() + " --prompt hi --kv-policy lru");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kv_policy.name"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvserve::testing
