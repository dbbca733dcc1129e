// Cancelling a request in each of its states (queued, in the middle of its prefill, decoding), by
// the client going away or by Abort, ends it and gives back every KV page.
//
// A synthetic SmolLM2-135M (no file needed) is slow enough on the CPU backend that each state lasts
// long enough to be hit on purpose: one sequence runs at a time, and a prompt is prefilled in
// 8-token chunks, one per engine step.
#include <gtest/gtest.h>

#include "tests/support/grpc_test_client.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

std::vector<int32_t> Prompt(int n) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(100 + (i * 37) % 40000);
  return ids;
}

pb::GenerateRequest LongRequest(const std::string& id, int prompt_tokens) {
  pb::GenerateRequest r = GreedyIdsRequest(Prompt(prompt_tokens), 1000);
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

class GrpcCancellationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start({"--model", "synthetic:smollm2-135m", "--max-running", "1",
                                        "--max-batch-tokens", "8", "--kv-cache-memory", "256MiB"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = server_->NewStub();
  }

  // Every request gone, and with them their pages.
  void ExpectNoPagesLeft() {
    auto status = WaitUntilIdle(*stub_);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->running(), 0u);
    EXPECT_EQ(status->waiting(), 0u);
    EXPECT_EQ(DevicePagesUsed(*status), 0u);
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<pb::Inference::Stub> stub_;
};

TEST_F(GrpcCancellationTest, ClientCancelWhileDecodingFreesItsPages) {
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, LongRequest("decoding", 40));
  pb::GenerateResponse response;
  int tokens = 0;
  while (tokens < 2 && reader->Read(&response)) tokens += response.token_ids_size();
  ASSERT_GE(tokens, 2) << "decoding";
  auto status = GetServerStatus(*stub_);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_GT(DevicePagesUsed(*status), 0u);

  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ExpectNoPagesLeft();
}

TEST_F(GrpcCancellationTest, AbortWhileDecodingEndsTheStreamAsCancelled) {
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, LongRequest("to-abort", 40));
  pb::GenerateResponse response;
  int tokens = 0;
  while (tokens < 2 && reader->Read(&response)) tokens += response.token_ids_size();
  ASSERT_GE(tokens, 2) << "decoding";

  EXPECT_TRUE(Abort(*stub_, "to-abort"));
  pb::GenerateResponse last;
  while (reader->Read(&response)) {
    tokens += response.token_ids_size();
    last = response;
  }
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_CANCELLED);
  EXPECT_EQ(last.usage().completion_tokens(), static_cast<uint32_t>(tokens));
  EXPECT_LT(tokens, 1000);
  EXPECT_FALSE(Abort(*stub_, "to-abort")) << "no longer live";
  ExpectNoPagesLeft();
}

TEST_F(GrpcCancellationTest, CancelMidPrefillFreesItsPages) {
  // 160 prompt tokens in 8-token chunks: 20 engine steps of a 135M-parameter model.
  BackgroundGenerate client(*stub_, LongRequest("prefilling", 160));
  auto status = WaitForStatus(
      *stub_, [](const pb::ServerStatus& s) { return s.running() == 1 && DevicePagesUsed(s) > 0; });
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->running(), 1u);
  EXPECT_TRUE(Abort(*stub_, "prefilling"));
  const StreamResult& result = client.Wait();
  ASSERT_TRUE(result.status.ok()) << Describe(result.status);
  ASSERT_TRUE(result.final.has_value());
  EXPECT_EQ(result.final->finish_reason(), pb::FINISH_REASON_CANCELLED);
  EXPECT_TRUE(result.tokens.empty()) << "cancelled before its first token";
  ExpectNoPagesLeft();
}

TEST_F(GrpcCancellationTest, CancelWhileQueuedLeavesTheRunningRequestAlone) {
  grpc::ClientContext running_context;
  auto running = stub_->Generate(&running_context, LongRequest("running", 16));
  pb::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response));  // it runs: the only slot is taken

  // Queued behind it: cancelled by the client, then another by Abort.
  {
    grpc::ClientContext context;
    auto queued = stub_->Generate(&context, LongRequest("queued-1", 16));
    auto status = WaitForStatus(*stub_, [](const pb::ServerStatus& s) { return s.waiting() == 1; });
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_EQ(status->waiting(), 1u);
    context.TryCancel();
    while (queued->Read(&response)) {
    }
    EXPECT_EQ(queued->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  auto status = WaitForStatus(*stub_, [](const pb::ServerStatus& s) { return s.waiting() == 0; });
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->waiting(), 0u);
  EXPECT_EQ(status->running(), 1u);

  BackgroundGenerate client(*stub_, LongRequest("queued-2", 16));
  status = WaitForStatus(*stub_, [](const pb::ServerStatus& s) { return s.waiting() == 1; });
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(Abort(*stub_, "queued-2"));
  const StreamResult& aborted = client.Wait();
  ASSERT_TRUE(aborted.final.has_value()) << Describe(aborted.status);
  EXPECT_EQ(aborted.final->finish_reason(), pb::FINISH_REASON_CANCELLED);
  EXPECT_TRUE(aborted.tokens.empty());

  // The running one went on throughout.
  status = GetServerStatus(*stub_);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->running(), 1u);
  EXPECT_TRUE(running->Read(&response));
  running_context.TryCancel();
  while (running->Read(&response)) {
  }
  running->Finish();
  ExpectNoPagesLeft();
}

}  // namespace
}  // namespace kvserve::testing
