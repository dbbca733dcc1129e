// `kvserve-cli health` against a real server, as a HEALTHCHECK or exec probe runs it: exit 0 only
// when kvserve.v1.Inference (or the service asked for) is SERVING; otherwise exit 1 with one line
// saying why (draining, an unknown service, nothing listening).
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/support/cli_run.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

int LineCount(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

TEST(CliHealthTest, ServingServerExitsZero) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const CliRun readiness = RunCli("health --server " + (*server)->address());
  EXPECT_EQ(readiness.exit_code, 0) << readiness.out;
  EXPECT_NE(readiness.out.find("kvserve.v1.Inference"), std::string::npos) << readiness.out;
  EXPECT_NE(readiness.out.find("SERVING"), std::string::npos) << readiness.out;
  const CliRun liveness = RunCli("health --service '' --server " + (*server)->address());
  EXPECT_EQ(liveness.exit_code, 0) << liveness.out;
}

TEST(CliHealthTest, UnknownServiceFailsWithOneLine) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const CliRun r = RunCli("health --service no.such.Service --server " + (*server)->address());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(LineCount(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("no.such.Service"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NOT_FOUND"), std::string::npos) << r.out;
}

TEST(CliHealthTest, NothingListeningFailsWithOneLine) {
  std::string address;
  {
    auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
    ASSERT_TRUE(server.ok()) << server.status();
    address = (*server)->address();
  }  // stopped: the port is closed now
  const CliRun r = RunCli("health --timeout 2 --server " + address);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(LineCount(r.out), 1) << r.out;
  EXPECT_NE(r.out.find(address), std::string::npos) << r.out;
}

TEST(CliHealthTest, DrainingServerIsNotServing) {
  // A synthetic SmolLM2-135M decodes slowly enough for the drain to be observed
  // (server_drain_test).
  auto started = ServerProcess::Start({"--model", "synthetic:smollm2-135m", "--kv-cache-memory",
                                       "64MiB", "--drain-timeout", "120"});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ServerProcess> server = *std::move(started);
  auto stub = server->NewStub();
  pb::GenerateRequest request = GreedyIdsRequest({1, 500, 600, 700}, 48);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto in_flight = stub->Generate(&context, request);
  pb::GenerateResponse response;
  ASSERT_TRUE(in_flight->Read(&response));

  server->Signal(SIGTERM);
  CliRun r{0, ""};
  for (int i = 0; i < 200 && r.exit_code == 0; ++i) {
    r = RunCli("health --server " + server->address());
    if (r.exit_code == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("NOT_SERVING"), std::string::npos) << r.out;
  EXPECT_EQ(LineCount(r.out), 1) << r.out;
  // Liveness still holds while the request drains.
  const CliRun liveness = RunCli("health --service '' --server " + server->address());
  EXPECT_EQ(liveness.exit_code, 0) << liveness.out;
  while (in_flight->Read(&response)) {
  }
  EXPECT_TRUE(in_flight->Finish().ok());
}

}  // namespace
}  // namespace kvserve::testing
