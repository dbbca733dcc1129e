// The real kvserve over gRPC: streamed greedy output equals the offline `kvserve-cli generate`,
// and requests running together each produce what they produce alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/support/command_runner.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/server_process.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

// `kvserve-cli generate --format json` for the same model and request flags.
nlohmann::json OfflineGenerate(const std::string& model_flags, const std::string& request_flags) {
  const CommandResult r = RunCommand(std::string(KVSERVE_BIN_DIR) + "/kvserve-cli generate " +
                                     model_flags + " " + request_flags + " --format json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

std::string StoriesFlags() {
  return "--model " + Stories260KModelPath() + " --tokenizer " + Stories260KTokenizerPath();
}

class GrpcGenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = server_->NewStub();
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<pb::Inference::Stub> stub_;
};

TEST_F(GrpcGenerateTest, StreamedTextPromptEqualsOfflineGenerate) {
  const nlohmann::json offline =
      OfflineGenerate(StoriesFlags(), "--prompt 'Once upon a time' --max-tokens 40");
  const StreamResult streamed = GenerateAll(*stub_, GreedyTextRequest("Once upon a time", 40));
  ASSERT_TRUE(streamed.status.ok()) << Describe(streamed.status);
  EXPECT_EQ(streamed.tokens, offline["token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(streamed.text, offline["text"].get<std::string>());
  EXPECT_GT(streamed.messages, 1) << "tokens arrive as a stream";
  ASSERT_TRUE(streamed.final.has_value());
  EXPECT_EQ(streamed.final->usage().prompt_tokens(), offline["prompt_tokens"].get<uint32_t>());
  EXPECT_EQ(streamed.final->usage().completion_tokens(), streamed.tokens.size());
  EXPECT_EQ(streamed.final->finish_reason(), pb::FINISH_REASON_MAX_TOKENS);
  EXPECT_EQ(streamed.final->kv().policy(), "full");
  EXPECT_GT(streamed.final->timing().ttft_ms(), 0);
}

TEST_F(GrpcGenerateTest, StreamedIdPromptEqualsOfflineGenerateUntilEos) {
  // Long enough that the story ends with EOS before the limit.
  const nlohmann::json offline =
      OfflineGenerate(StoriesFlags(), "--prompt-ids 1,403,407 --max-tokens 400");
  const StreamResult streamed = GenerateAll(*stub_, GreedyIdsRequest({1, 403, 407}, 400));
  ASSERT_TRUE(streamed.status.ok()) << Describe(streamed.status);
  EXPECT_EQ(streamed.tokens, offline["token_ids"].get<std::vector<int32_t>>());
  ASSERT_TRUE(streamed.final.has_value());
  EXPECT_EQ(streamed.final->finish_reason(), offline["finish_reason"] == "eos"
                                                 ? pb::FINISH_REASON_EOS
                                                 : pb::FINISH_REASON_MAX_TOKENS);
}

TEST_F(GrpcGenerateTest, NonStreamingSendsOneMessageWithEverything) {
  pb::GenerateRequest request = GreedyTextRequest("Once upon a time", 30);
  const StreamResult streamed = GenerateAll(*stub_, request);
  request.set_non_streaming(true);
  const StreamResult whole = GenerateAll(*stub_, request);
  ASSERT_TRUE(whole.status.ok()) << Describe(whole.status);
  EXPECT_EQ(whole.messages, 1);
  EXPECT_EQ(whole.tokens, streamed.tokens);
  EXPECT_EQ(whole.text, streamed.text);
  ASSERT_TRUE(whole.final.has_value());
  EXPECT_EQ(whole.final->usage().completion_tokens(), 30u);
}

TEST_F(GrpcGenerateTest, RequestIdIsEchoedOnEveryMessage) {
  pb::GenerateRequest request = GreedyTextRequest("Once upon a time", 5);
  request.set_request_id("my-request-7");
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, request);
  pb::GenerateResponse response;
  int messages = 0;
  while (reader->Read(&response)) {
    ++messages;
    EXPECT_EQ(response.request_id(), "my-request-7");
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_GT(messages, 0);
}

TEST_F(GrpcGenerateTest, ConcurrentRequestsEachProduceWhatTheyProduceAlone) {
  constexpr int kRequests = 64;
  std::mt19937 rng(7);
  std::vector<pb::GenerateRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    // Mixed lengths: prompts of 1 to 300 tokens, 1 to 60 new tokens; EOS may end some early.
    const int prompt_len = std::uniform_int_distribution<int>(1, 300)(rng);
    std::vector<int32_t> prompt = {1};
    for (int t = 1; t < prompt_len; ++t) {
      prompt.push_back(std::uniform_int_distribution<int32_t>(3, 511)(rng));
    }
    requests.push_back(GreedyIdsRequest(prompt, std::uniform_int_distribution<int>(1, 60)(rng)));
  }
  std::vector<StreamResult> alone;
  for (const auto& r : requests) alone.push_back(GenerateAll(*stub_, r));

  std::vector<StreamResult> together(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { together[i] = GenerateAll(*stub_, requests[i]); });
  }
  for (auto& t : clients) t.join();

  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(alone[i].status.ok()) << i << ": " << Describe(alone[i].status);
    ASSERT_TRUE(together[i].status.ok()) << i << ": " << Describe(together[i].status);
    EXPECT_EQ(together[i].tokens, alone[i].tokens) << "request " << i;
    ASSERT_TRUE(together[i].final.has_value());
    EXPECT_EQ(together[i].final->finish_reason(), alone[i].final->finish_reason()) << i;
  }
  auto status = WaitUntilIdle(*stub_);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DevicePagesUsed(*status), 0u);
}

TEST_F(GrpcGenerateTest, ModelInfoDescribesTheLoadedModel) {
  grpc::ClientContext context;
  pb::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.n_layers(), 5u);
  EXPECT_EQ(info.vocab_size(), 512u);
  EXPECT_EQ(info.context_length(), 512u);
  EXPECT_EQ(info.backend(), "cpu");
  EXPECT_FALSE(info.synthetic_weights());
  std::vector<std::string> policies;
  for (const auto& p : info.kv_policies()) policies.push_back(p.name());
  EXPECT_NE(std::find(policies.begin(), policies.end(), "full"), policies.end());
}

TEST(GrpcGenerateSmolLm2Test, ChatTextEqualsOfflineGenerate) {
  const std::string model = SmolLm2GgufPath();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF absent";
  auto server = ServerProcess::Start({"--model", model});
  ASSERT_TRUE(server.ok()) << server.status();
  const nlohmann::json offline = OfflineGenerate(
      "--model " + model, "--chat --prompt 'What is the capital of France?' --max-tokens 12");

  pb::GenerateRequest request;
  auto* user = request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("What is the capital of France?");
  request.mutable_sampling()->set_max_new_tokens(12);
  request.mutable_sampling()->set_temperature(0);
  const StreamResult streamed = GenerateAll(*(*server)->NewStub(), request);
  ASSERT_TRUE(streamed.status.ok()) << Describe(streamed.status);
  EXPECT_EQ(streamed.text, offline["text"].get<std::string>());
  EXPECT_EQ(streamed.tokens, offline["token_ids"].get<std::vector<int32_t>>());
  EXPECT_NE(streamed.text.find("Paris"), std::string::npos) << streamed.text;
}

}  // namespace
}  // namespace kvserve::testing
