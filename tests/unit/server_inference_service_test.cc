// kvserve.v1.Inference end to end in one process: a ServerRunner on an ephemeral port serving
// stories260K, called through the generated stub, plus health, reflection and /metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "server/server_runner.h"
#include "tests/support/loopback_http.h"
#include "tests/support/test_paths.h"

namespace kvserve::server {
namespace {

// stories260K's greedy continuation of BOS (the CLI's golden output).
const std::vector<int32_t> kGreedyFromBos = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};

ServerConfig StoriesConfig() {
  ServerConfig c;
  c.model = testing::Stories260KModelPath();
  c.tokenizer = testing::Stories260KTokenizerPath();
  c.host = "127.0.0.1";
  c.port = 0;
  c.metrics_port = 0;
  c.threads = 1;
  c.kv_cache_memory = int64_t{64} << 20;
  c.security.reflection = true;  // ReflectionListsTheService
  return c;
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// grpc.health.v1.Health/Check by hand (no health.proto is installed): the request is field 1
// (service), the answer's field 1 the status (1 SERVING, 2 NOT_SERVING; absent 0 UNKNOWN).
int HealthStatus(grpc::Channel& channel, const std::string& service) {
  std::string request = {'\x0a', static_cast<char>(service.size())};
  request += service;
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                         grpc::internal::RpcMethod::NORMAL_RPC);
  const grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      &channel, method, &context, in, &out);
  if (!status.ok()) return -status.error_code();
  const std::string bytes = Bytes(out);
  return bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : 0;
}

class InferenceServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    runner_ = new ServerRunner(StoriesConfig());
    ASSERT_TRUE(runner_->Listen().ok());
    ASSERT_TRUE(runner_->LoadModel().ok());
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(runner_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    runner_->Shutdown();
    delete runner_;
  }

  std::unique_ptr<v1::Inference::Stub> Stub() { return v1::Inference::NewStub(*channel_); }

  struct Call {
    std::vector<v1::GenerateResponse> messages;
    grpc::Status status;
    std::vector<int32_t> tokens() const {
      std::vector<int32_t> all;
      for (const auto& m : messages)
        all.insert(all.end(), m.token_ids().begin(), m.token_ids().end());
      return all;
    }
  };
  Call Generate(const v1::GenerateRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = Stub()->Generate(&context, request);
    Call call;
    v1::GenerateResponse r;
    while (reader->Read(&r)) call.messages.push_back(r);
    call.status = reader->Finish();
    return call;
  }
  v1::ServerStatus Status() {
    grpc::ClientContext context;
    v1::ServerStatus status;
    EXPECT_TRUE(Stub()->GetServerStatus(&context, {}, &status).ok());
    return status;
  }
  // Waits until the engine has nothing running or waiting (a cancelled request's pages freed).
  void WaitUntilIdle() {
    for (int i = 0; i < 1000; ++i) {
      const v1::ServerStatus s = Status();
      if (s.running() == 0 && s.waiting() == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "the engine never became idle";
  }

  static ServerRunner* runner_;
  static std::shared_ptr<grpc::Channel>* channel_;
};
ServerRunner* InferenceServiceTest::runner_ = nullptr;
std::shared_ptr<grpc::Channel>* InferenceServiceTest::channel_ = nullptr;

v1::GenerateRequest GreedyFromBos(int max_new_tokens) {
  v1::GenerateRequest r;
  r.mutable_token_ids()->add_ids(1);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_max_new_tokens(max_new_tokens);
  return r;
}

TEST_F(InferenceServiceTest, StreamsGreedyTokensThenAFinalMessage) {
  const Call call = Generate(GreedyFromBos(10));
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  EXPECT_EQ(call.tokens(), kGreedyFromBos);
  ASSERT_GE(call.messages.size(), 2u);  // streamed, not one message
  const v1::GenerateResponse& last = call.messages.back();
  for (size_t i = 0; i + 1 < call.messages.size(); ++i) {
    EXPECT_EQ(call.messages[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
    EXPECT_EQ(call.messages[i].request_id(), last.request_id());
  }
  EXPECT_FALSE(last.request_id().empty());
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_MAX_TOKENS);
  EXPECT_EQ(last.usage().prompt_tokens(), 1u);
  EXPECT_EQ(last.usage().completion_tokens(), 10u);
  EXPECT_EQ(last.completion_tokens(), 10u);
  EXPECT_GT(last.timing().e2e_ms(), 0);
  EXPECT_EQ(last.kv().policy(), "full");
  EXPECT_EQ(std::vector<int>(last.kv().kept_tokens().begin(), last.kv().kept_tokens().end()),
            std::vector<int>(5, 10));
  std::string text;
  for (const auto& m : call.messages) text += m.text();
  EXPECT_EQ(text.rfind(" Once upon a time", 0), 0u) << text;
}

TEST_F(InferenceServiceTest, NonStreamingSendsOneMessageWithEverything) {
  v1::GenerateRequest request = GreedyFromBos(10);
  request.set_non_streaming(true);
  request.set_request_id("one-shot");
  const Call call = Generate(request);
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  ASSERT_EQ(call.messages.size(), 1u);
  EXPECT_EQ(call.tokens(), kGreedyFromBos);
  EXPECT_EQ(call.messages[0].request_id(), "one-shot");
  EXPECT_EQ(call.messages[0].finish_reason(), v1::FINISH_REASON_MAX_TOKENS);
  EXPECT_EQ(call.messages[0].text().rfind(" Once upon a time", 0), 0u);
}

TEST_F(InferenceServiceTest, StopStringEndsWithTheMatchAndLogprobsHaveText) {
  v1::GenerateRequest request;
  request.set_text("Once upon a time");
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_new_tokens(40);
  request.mutable_sampling()->add_stop("Lily");
  request.mutable_sampling()->set_logprobs(2);
  const Call call = Generate(request);
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  const v1::GenerateResponse& last = call.messages.back();
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(last.matched_stop(), "Lily");
  std::string text;
  int logprobs = 0;
  for (const auto& m : call.messages) {
    text += m.text();
    for (const auto& lp : m.logprobs()) {
      ++logprobs;
      EXPECT_EQ(lp.top_size(), 2);
      for (const auto& top : lp.top()) EXPECT_FALSE(top.text().empty());
    }
  }
  EXPECT_EQ(text.find("Lily"), std::string::npos) << text;
  EXPECT_EQ(logprobs, static_cast<int>(last.completion_tokens()));
}

TEST_F(InferenceServiceTest, InvalidRequestsAreInvalidArgumentNamingTheField) {
  v1::GenerateRequest request = GreedyFromBos(10);
  request.mutable_sampling()->set_top_p(1.5f);
  Call call = Generate(request);
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(call.status.error_message(), "sampling.top_p must be in (0, 1], got 1.5");
  EXPECT_TRUE(call.messages.empty());

  call = Generate(v1::GenerateRequest());
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(call.status.error_message(), "prompt is not set: set text, token_ids or chat");
}

TEST_F(InferenceServiceTest, AbortCancelsARunningRequestById) {
  v1::GenerateRequest request = GreedyFromBos(500);
  request.set_request_id("abort-me");
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = Stub()->Generate(&context, request);
  v1::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));  // running now
  v1::AbortRequest abort;
  abort.set_request_id("abort-me");
  v1::AbortResponse aborted;
  grpc::ClientContext abort_context;
  const grpc::Status abort_status = Stub()->Abort(&abort_context, abort, &aborted);
  v1::GenerateResponse last = r;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  // Either the abort found it, or the request had already finished on its own (NOT_FOUND).
  EXPECT_EQ(abort_status.ok(), last.finish_reason() == v1::FINISH_REASON_CANCELLED)
      << last.finish_reason() << " " << abort_status.error_message();
  EXPECT_EQ(aborted.found(), abort_status.ok());

  grpc::ClientContext unknown_context;
  abort.set_request_id("no-such-request");
  const grpc::Status unknown = Stub()->Abort(&unknown_context, abort, &aborted);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(unknown.error_message(),
            "no queued or running request 'no-such-request' of this client");
}

TEST_F(InferenceServiceTest, ClientCancellationFreesTheRequest) {
  v1::GenerateRequest request = GreedyFromBos(500);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = Stub()->Generate(&context, request);
  v1::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  context.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  WaitUntilIdle();
  EXPECT_EQ(Status().kv_tiers(0).pages_used(), 0u);
}

TEST_F(InferenceServiceTest, SlowReaderGetsEveryTokenInOrder) {
  // A small receive window and a late first read make the server's writes wait, so the stream's
  // queue fills and later outputs merge; the client must still see exactly the fast reader's
  // tokens, text and final message.
  v1::GenerateRequest request = GreedyFromBos(400);
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_logprobs(20);
  const Call fast = Generate(request);
  ASSERT_TRUE(fast.status.ok()) << fast.status.error_message();

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8192);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(runner_->grpc_port()),
                                           grpc::InsecureChannelCredentials(), args);
  grpc::ClientContext context;
  auto reader = v1::Inference::NewStub(channel)->Generate(&context, request);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Call slow;
  v1::GenerateResponse r;
  while (reader->Read(&r)) slow.messages.push_back(r);
  slow.status = reader->Finish();
  ASSERT_TRUE(slow.status.ok()) << slow.status.error_message();

  EXPECT_EQ(slow.tokens(), fast.tokens());
  std::string fast_text, slow_text;
  int slow_logprobs = 0;
  for (const auto& m : fast.messages) fast_text += m.text();
  for (const auto& m : slow.messages) {
    slow_text += m.text();
    slow_logprobs += m.logprobs_size();
  }
  EXPECT_EQ(slow_text, fast_text);
  EXPECT_EQ(slow_logprobs, 400);
  EXPECT_LE(slow.messages.size(), fast.messages.size());
  EXPECT_EQ(slow.messages.back().finish_reason(), v1::FINISH_REASON_MAX_TOKENS);
  EXPECT_EQ(slow.messages.back().completion_tokens(), 400u);
}

TEST_F(InferenceServiceTest, ConcurrentStreamsEachGetTheirOwnOutput) {
  std::vector<std::thread> clients;
  std::vector<Call> calls(8);
  for (size_t i = 0; i < calls.size(); ++i) {
    clients.emplace_back([this, i, &calls] { calls[i] = Generate(GreedyFromBos(10)); });
  }
  for (std::thread& t : clients) t.join();
  for (const Call& call : calls) {
    ASSERT_TRUE(call.status.ok()) << call.status.error_message();
    EXPECT_EQ(call.tokens(), kGreedyFromBos);
  }
}

TEST_F(InferenceServiceTest, ExpiredDeadlineEndsTheRequest) {
  v1::GenerateRequest request = GreedyFromBos(500);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(20));
  auto reader = Stub()->Generate(&context, request);
  v1::GenerateResponse r;
  while (reader->Read(&r)) {
  }
  const grpc::Status status = reader->Finish();
  // Unless the machine generated all 500 tokens within the deadline, the call expired.
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      << status.error_message();
  WaitUntilIdle();
  EXPECT_EQ(Status().kv_tiers(0).pages_used(), 0u);
}

TEST_F(InferenceServiceTest, ModelInfoDescribesTheModelAndEveryPolicy) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(Stub()->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.model(), testing::Stories260KModelPath());
  EXPECT_EQ(info.architecture(), "llama");
  EXPECT_EQ(info.context_length(), 512u);
  EXPECT_EQ(info.vocab_size(), 512u);
  EXPECT_EQ(info.n_layers(), 5u);
  EXPECT_EQ(info.n_heads(), 8u);
  EXPECT_EQ(info.n_kv_heads(), 4u);
  EXPECT_EQ(info.head_dim(), 8u);
  EXPECT_EQ(info.hidden_dim(), 64u);
  EXPECT_EQ(info.backend(), "cpu");
  EXPECT_EQ(info.default_kv_policy(), "full");
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.eos_token_id(), 2);
  EXPECT_FALSE(info.synthetic_weights());
  std::vector<std::string> names;
  for (const auto& p : info.kv_policies()) {
    names.push_back(p.name());
    EXPECT_EQ(p.defaults().name(), p.name());
    // The defaults fill the policy's oneof member; the deprecated flat fields stay empty.
    const auto* member = v1::KvPolicy::descriptor()->FindFieldByName(p.name());
    ASSERT_NE(member, nullptr) << p.name();
    EXPECT_TRUE(p.defaults().GetReflection()->HasField(p.defaults(), member)) << p.name();
    EXPECT_FALSE(p.defaults().has_window());
  }
  // tsp_layer -1 shows the layer it resolves to; a tiered policy shows the server's page size.
  EXPECT_EQ(info.kv_policies(2).defaults().fastkv().tsp_layer(), 1);  // 5 / 2 - 1
  EXPECT_EQ(info.kv_policies(4).defaults().freekv().sink(), 512);
  EXPECT_EQ(names, (std::vector<std::string>{"full", "snapkv", "fastkv", "quest", "freekv",
                                             "fastkv_freekv"}));
}

TEST_F(InferenceServiceTest, ServerStatusReportsReadinessAndTiers) {
  const v1::ServerStatus s = Status();
  EXPECT_TRUE(s.ready());
  EXPECT_FALSE(s.draining());
  ASSERT_EQ(s.kv_tiers_size(), 2);
  EXPECT_EQ(s.kv_tiers(0).tier(), "device");
  EXPECT_GT(s.kv_tiers(0).pages_total(), 0u);
  EXPECT_EQ(s.kv_tiers(0).page_size(), 32u);
  EXPECT_EQ(s.kv_tiers(1).tier(), "host");
  EXPECT_GT(s.kv_tiers(1).pages_total(), 0u);  // the host tier of quest/freekv
  EXPECT_EQ(s.kv_tiers(1).pages_used(), 0u);
  EXPECT_EQ(s.kv_tiers(1).page_size(), 32u);
}

TEST_F(InferenceServiceTest, HealthServesBothNames) {
  EXPECT_EQ(HealthStatus(**channel_, ""), 1);
  EXPECT_EQ(HealthStatus(**channel_, "kvserve.v1.Inference"), 1);
  EXPECT_EQ(HealthStatus(**channel_, "no.such.Service"), -grpc::StatusCode::NOT_FOUND);
}

TEST_F(InferenceServiceTest, ReflectionListsTheService) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel_->get(), method, &context));
  // ServerReflectionRequest{list_services: "*"} (field 7).
  grpc::Slice slice(std::string("\x3a\x01*", 3));
  ASSERT_TRUE(stream->Write(grpc::ByteBuffer(&slice, 1)));
  stream->WritesDone();
  grpc::ByteBuffer response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_NE(Bytes(response).find("kvserve.v1.Inference"), std::string::npos);
  while (stream->Read(&response)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(InferenceServiceTest, MetricsCountFinishedRequests) {
  ASSERT_TRUE(Generate(GreedyFromBos(5)).status.ok());
  auto response = testing::HttpGet(runner_->metrics_port(), "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  for (const char* name :
       {"kvserve_time_to_first_token_seconds_bucket", "kvserve_inter_token_latency_seconds_bucket",
        "kvserve_e2e_request_latency_seconds_count", "kvserve_request_queue_time_seconds_count",
        "kvserve_num_requests_running", "kvserve_num_requests_waiting",
        "kvserve_kv_cache_usage_ratio", "kvserve_kv_host_usage_ratio",
        "kvserve_kv_tokens_kept_ratio", "kvserve_prompt_tokens_total",
        "kvserve_generation_tokens_total",
        "kvserve_request_success_total{finished_reason=\"max_tokens\"}",
        "kvserve_num_preemptions_total", "kvserve_requests_rejected_total{reason=\"invalid\"}",
        "kvserve_kv_recall_bytes_total", "kvserve_freekv_corrections_total"}) {
    EXPECT_NE(response->body.find(name), std::string::npos) << name;
  }
  EXPECT_NE(response->body.find("kvserve_inter_token_latency_seconds_bucket{le=\"0.001\"}"),
            std::string::npos);
}

// Readiness and refusals across the lifecycle: loading, serving, draining.
TEST(ServerLifecycleTest, HealthAndRefusalsFollowLoadingAndDraining) {
  ServerRunner runner(StoriesConfig());
  ASSERT_TRUE(runner.Listen().ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(runner.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  auto generate_status = [&stub] {
    grpc::ClientContext context;
    auto reader = stub->Generate(&context, GreedyFromBos(3));
    v1::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  };

  EXPECT_EQ(HealthStatus(*channel, ""), 1);
  EXPECT_EQ(HealthStatus(*channel, "kvserve.v1.Inference"), 2);
  grpc::Status s = generate_status();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "model is loading");
  {
    grpc::ClientContext context;
    v1::ModelInfo info;
    EXPECT_EQ(stub->GetModelInfo(&context, {}, &info).error_code(), grpc::StatusCode::UNAVAILABLE);
  }

  ASSERT_TRUE(runner.LoadModel().ok());
  EXPECT_EQ(HealthStatus(*channel, "kvserve.v1.Inference"), 1);
  EXPECT_TRUE(generate_status().ok());

  runner.Drain(std::chrono::seconds(5), nullptr);
  EXPECT_EQ(HealthStatus(*channel, "kvserve.v1.Inference"), 2);
  EXPECT_EQ(HealthStatus(*channel, ""), 1);  // the process still serves
  s = generate_status();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "server is draining");
  {
    grpc::ClientContext context;
    v1::ServerStatus status;
    ASSERT_TRUE(stub->GetServerStatus(&context, {}, &status).ok());
    EXPECT_TRUE(status.draining());
    EXPECT_FALSE(status.ready());
  }
  runner.Shutdown();
}

TEST(ServerLifecycleTest, UnloadableModelFailsWithTheReason) {
  ServerConfig config = StoriesConfig();
  config.model = "/nonexistent/model.gguf";
  config.metrics_port = -1;
  ServerRunner runner(config);
  ASSERT_TRUE(runner.Listen().ok());
  EXPECT_EQ(runner.metrics_port(), -1);
  const absl::Status s = runner.LoadModel();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/model.gguf"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace kvserve::server
