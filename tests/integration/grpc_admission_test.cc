// Admission control and deadlines: a full queue answers RESOURCE_EXHAUSTED, a live request id
// cannot be reused, and a request past its deadline ends (finish reason DEADLINE, or the
// DEADLINE_EXCEEDED status) without leaving pages behind.
//
// A synthetic SmolLM2-135M decodes slowly enough on the CPU backend that the request holding the
// only running slot is still running while the others arrive.
#include <gtest/gtest.h>

#include "tests/support/grpc_test_client.h"
#include "tests/support/loopback_http.h"
#include "tests/support/prometheus_text_parser.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

pb::GenerateRequest LongRequest(const std::string& id) {
  pb::GenerateRequest r = GreedyIdsRequest({1, 200, 300, 400, 500, 600, 700, 800}, 1000);
  r.set_request_id(id);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

bool Abort(pb::Inference::Stub& stub, const std::string& id) {
  grpc::ClientContext context;
  pb::AbortRequest request;
  request.set_request_id(id);
  pb::AbortResponse response;
  return stub.Abort(&context, request, &response).ok() && response.found();
}

std::unique_ptr<ServerProcess> StartSlowServer(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      "--model", "synthetic:smollm2-135m", "--max-running", "1", "--max-batch-tokens",
      "8",       "--kv-cache-memory",      "256MiB"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(GrpcAdmissionTest, FullQueueIsResourceExhausted) {
  auto server = StartSlowServer({"--max-queued-requests", "1"});
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();

  grpc::ClientContext running_context;
  auto running = stub->Generate(&running_context, LongRequest("running"));
  pb::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response)) << "the first request runs";

  grpc::ClientContext queued_context;
  auto queued = stub->Generate(&queued_context, LongRequest("queued"));
  auto status = WaitForStatus(*stub, [](const pb::ServerStatus& s) { return s.waiting() == 1; });
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->waiting(), 1u) << "the second one waits";

  const StreamResult refused = GenerateAll(*stub, LongRequest("refused"));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << Describe(refused.status);
  EXPECT_TRUE(refused.tokens.empty());

  auto page = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  auto metrics = ParseMetricsPage(page->body);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value("kvserve_requests_rejected_total", {{"reason", "queue_full"}}), 1);

  EXPECT_TRUE(Abort(*stub, "queued"));
  EXPECT_TRUE(Abort(*stub, "running"));
  while (queued->Read(&response)) {
  }
  while (running->Read(&response)) {
  }
  EXPECT_TRUE(queued->Finish().ok());
  EXPECT_TRUE(running->Finish().ok());
  status = WaitUntilIdle(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DevicePagesUsed(*status), 0u);
}

TEST(GrpcAdmissionTest, LiveRequestIdCannotBeReused) {
  auto server = StartSlowServer({});
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  grpc::ClientContext context;
  auto first = stub->Generate(&context, LongRequest("same-id"));
  pb::GenerateResponse response;
  ASSERT_TRUE(first->Read(&response));

  const StreamResult second = GenerateAll(*stub, LongRequest("same-id"));
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << Describe(second.status);
  EXPECT_NE(second.status.error_message().find("same-id"), std::string::npos)
      << second.status.error_message();

  context.TryCancel();
  while (first->Read(&response)) {
  }
  first->Finish();
}

TEST(GrpcAdmissionTest, DeadlineEndsARunningRequestAndFreesItsPages) {
  auto server = StartSlowServer({});
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  // 1000 tokens take a minute or more here; the deadline is a second.
  const StreamResult result =
      GenerateAll(*stub, LongRequest("deadline"), std::chrono::milliseconds(1000));
  if (result.status.ok()) {
    ASSERT_TRUE(result.final.has_value());
    EXPECT_EQ(result.final->finish_reason(), pb::FINISH_REASON_DEADLINE);
  } else {
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << Describe(result.status);
  }
  EXPECT_LT(result.tokens.size(), 1000u);
  auto status = WaitUntilIdle(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->running(), 0u);
  EXPECT_EQ(DevicePagesUsed(*status), 0u);
}

TEST(GrpcAdmissionTest, DeadlineEndsAQueuedRequest) {
  auto server = StartSlowServer({});
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  grpc::ClientContext running_context;
  auto running = stub->Generate(&running_context, LongRequest("running"));
  pb::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response));

  const StreamResult expired =
      GenerateAll(*stub, LongRequest("queued"), std::chrono::milliseconds(500));
  EXPECT_TRUE(expired.tokens.empty());
  if (expired.status.ok()) {
    ASSERT_TRUE(expired.final.has_value());
    EXPECT_EQ(expired.final->finish_reason(), pb::FINISH_REASON_DEADLINE);
  } else {
    EXPECT_EQ(expired.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << Describe(expired.status);
  }
  auto status = WaitForStatus(*stub, [](const pb::ServerStatus& s) { return s.waiting() == 0; });
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->waiting(), 0u);
  EXPECT_EQ(status->running(), 1u);

  running_context.TryCancel();
  while (running->Read(&response)) {
  }
  running->Finish();
  status = WaitUntilIdle(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DevicePagesUsed(*status), 0u);
}

}  // namespace
}  // namespace kvserve::testing
