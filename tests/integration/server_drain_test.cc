// Health and drain as Kubernetes sees them: SERVING once the model is loaded; on SIGTERM readiness
// turns NOT_SERVING, new requests are refused with UNAVAILABLE, the request in flight completes,
// and the process exits 0.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/support/grpc_test_client.h"
#include "tests/support/health_check.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

constexpr char kService[] = "kvserve.v1.Inference";
constexpr auto kHealthTimeout = std::chrono::milliseconds(2000);

TEST(ServerDrainTest, SigtermDrainsTheInFlightRequestAndExitsZero) {
  // A synthetic SmolLM2-135M decodes slowly enough that the request is still in flight while the
  // drain is observed.
  auto started = ServerProcess::Start({"--model", "synthetic:smollm2-135m", "--kv-cache-memory",
                                       "64MiB", "--drain-timeout", "120"});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ServerProcess> server = *std::move(started);
  const auto channel = server->NewChannel();
  EXPECT_EQ(CheckHealth(channel, kService, kHealthTimeout).value_or(HealthStatus::kUnknown),
            HealthStatus::kServing);
  EXPECT_EQ(CheckHealth(channel, "", kHealthTimeout).value_or(HealthStatus::kUnknown),
            HealthStatus::kServing);

  auto stub = pb::Inference::NewStub(channel);
  pb::GenerateRequest request = GreedyIdsRequest({1, 500, 600, 700}, 64);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto in_flight = stub->Generate(&context, request);
  pb::GenerateResponse response;
  ASSERT_TRUE(in_flight->Read(&response));
  size_t tokens = response.token_ids_size();

  server->Signal(SIGTERM);
  // Readiness drops while the request is still running.
  HealthStatus readiness = HealthStatus::kServing;
  for (int i = 0; i < 1000 && readiness == HealthStatus::kServing; ++i) {
    readiness = CheckHealth(channel, kService, kHealthTimeout).value_or(HealthStatus::kUnknown);
    if (readiness == HealthStatus::kServing) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(readiness, HealthStatus::kNotServing);
  auto status = GetServerStatus(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->draining());
  EXPECT_EQ(status->running(), 1u) << "the request is still in flight";

  const StreamResult refused = GenerateAll(*stub, GreedyIdsRequest({1, 2, 3}, 4));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(refused.status);

  pb::GenerateResponse last;
  while (in_flight->Read(&response)) {
    tokens += response.token_ids_size();
    last = response;
  }
  const grpc::Status finished = in_flight->Finish();
  EXPECT_TRUE(finished.ok()) << Describe(finished);
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_MAX_TOKENS);
  EXPECT_EQ(tokens, 64u);

  auto exit_code = server->WaitForExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << server->Log();
}

TEST(ServerDrainTest, IdleServerExitsZeroOnSigterm) {
  auto started = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ServerProcess> server = *std::move(started);
  server->Signal(SIGTERM);
  auto exit_code = server->WaitForExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << server->Log();
  EXPECT_NE(server->Log().find("draining"), std::string::npos) << server->Log();
}

}  // namespace
}  // namespace kvserve::testing
