// Every invalid field of a GenerateRequest is refused with INVALID_ARGUMENT and a message naming
// the field, and the server goes on serving.
#include <gtest/gtest.h>

#include <functional>

#include "tests/support/grpc_test_client.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

struct InvalidCase {
  const char* what;
  std::function<void(pb::GenerateRequest&)> spoil;
  const char* named;  // the message names the field with this
};

std::vector<InvalidCase> Cases() {
  return {
      {"no prompt", [](pb::GenerateRequest& r) { r.clear_prompt(); }, "prompt"},
      {"empty text", [](pb::GenerateRequest& r) { r.set_text(""); }, "text is empty"},
      {"empty token ids", [](pb::GenerateRequest& r) { r.mutable_token_ids(); },
       "token_ids.ids is empty"},
      {"token id outside the vocabulary",
       [](pb::GenerateRequest& r) {
         auto* ids = r.mutable_token_ids()->mutable_ids();
         ids->Add(1);
         ids->Add(600);
       },
       "token_ids.ids[1]"},
      {"negative token id",
       [](pb::GenerateRequest& r) { r.mutable_token_ids()->mutable_ids()->Add(-3); },
       "token_ids.ids[0]"},
      {"chat without messages", [](pb::GenerateRequest& r) { r.mutable_chat(); }, "chat"},
      {"chat role",
       [](pb::GenerateRequest& r) {
         auto* m = r.mutable_chat()->add_messages();
         m->set_role("robot");
         m->set_content("hi");
       },
       "chat.messages[0].role"},
      {"zero max_new_tokens",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_max_new_tokens(0); },
       "sampling.max_new_tokens"},
      {"prompt + max_new_tokens beyond the context",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_max_new_tokens(600); },
       "max_new_tokens"},
      {"min_new_tokens above max_new_tokens",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_min_new_tokens(20); },
       "sampling.min_new_tokens"},
      {"negative temperature",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_temperature(-1); },
       "sampling.temperature"},
      {"zero top_p", [](pb::GenerateRequest& r) { r.mutable_sampling()->set_top_p(0); },
       "sampling.top_p"},
      {"top_p above 1", [](pb::GenerateRequest& r) { r.mutable_sampling()->set_top_p(1.5); },
       "sampling.top_p"},
      {"min_p above 1", [](pb::GenerateRequest& r) { r.mutable_sampling()->set_min_p(1.5); },
       "sampling.min_p"},
      {"zero repetition_penalty",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_repetition_penalty(0); },
       "sampling.repetition_penalty"},
      {"presence_penalty above 2",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_presence_penalty(3); },
       "sampling.presence_penalty"},
      {"frequency_penalty below -2",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->set_frequency_penalty(-3); },
       "sampling.frequency_penalty"},
      {"too many logprobs", [](pb::GenerateRequest& r) { r.mutable_sampling()->set_logprobs(21); },
       "sampling.logprobs"},
      {"empty stop string", [](pb::GenerateRequest& r) { r.mutable_sampling()->add_stop(""); },
       "sampling.stop[0]"},
      {"stop token id outside the vocabulary",
       [](pb::GenerateRequest& r) { r.mutable_sampling()->add_stop_token_ids(9999); },
       "sampling.stop_token_ids[0]"},
      {"unknown kv policy", [](pb::GenerateRequest& r) { r.mutable_kv_policy()->set_name("lru"); },
       "kv_policy.name"},
      {"kv pool",
       [](pb::GenerateRequest& r) {
         r.mutable_kv_policy()->set_name("snapkv");
         r.mutable_kv_policy()->set_pool("median");
       },
       "kv_policy.pool"},
      {"kv tsp_rate",
       [](pb::GenerateRequest& r) {
         r.mutable_kv_policy()->set_name("fastkv");
         r.mutable_kv_policy()->set_tsp_rate(1.5);
       },
       "kv_policy.tsp_rate"},
      {"kv retain_rate",
       [](pb::GenerateRequest& r) {
         r.mutable_kv_policy()->set_name("snapkv");
         r.mutable_kv_policy()->set_retain_rate(-0.5);
       },
       "kv_policy.retain_rate"},
      {"kv oneof tsp_rate",
       [](pb::GenerateRequest& r) { r.mutable_kv_policy()->mutable_fastkv()->set_tsp_rate(1.5); },
       "kv_policy.fastkv.tsp_rate must be in (0, 1], got 1.5"},
      {"kv oneof budget beyond the context",
       [](pb::GenerateRequest& r) { r.mutable_kv_policy()->mutable_freekv()->set_budget(1 << 30); },
       "kv_policy.freekv.budget must be <= the model's context (512)"},
      {"kv oneof with a flat field",
       [](pb::GenerateRequest& r) {
         r.mutable_kv_policy()->mutable_snapkv();
         r.mutable_kv_policy()->set_window(4);
       },
       "kv_policy.window belongs to the deprecated flat form"},
      {"kv flat field the policy lacks",
       [](pb::GenerateRequest& r) {
         r.mutable_kv_policy()->set_name("snapkv");
         r.mutable_kv_policy()->set_tau(0.5);
       },
       "kv_policy.tau is not an option of the snapkv policy"},
  };
}

TEST(GrpcValidationTest, EachInvalidFieldIsInvalidArgumentNamingIt) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  for (const InvalidCase& c : Cases()) {
    pb::GenerateRequest request = GreedyTextRequest("Once upon a time", 10);
    c.spoil(request);
    const StreamResult result = GenerateAll(*stub, request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.what << ": " << Describe(result.status);
    EXPECT_NE(result.status.error_message().find(c.named), std::string::npos)
        << c.what << ": '" << result.status.error_message() << "' should name " << c.named;
    EXPECT_TRUE(result.tokens.empty()) << c.what;
  }
  // Still serving, with nothing left behind.
  const StreamResult ok = GenerateAll(*stub, GreedyTextRequest("Once upon a time", 10));
  EXPECT_TRUE(ok.status.ok()) << Describe(ok.status);
  EXPECT_EQ(ok.tokens.size(), 10u);
  auto status = WaitUntilIdle(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DevicePagesUsed(*status), 0u);
}

TEST(GrpcValidationTest, TextPromptOnAModelWithoutTokenizerNamesTheField) {
  auto server = ServerProcess::Start({"--model", "synthetic:stories260k"});
  ASSERT_TRUE(server.ok()) << server.status();
  const StreamResult result =
      GenerateAll(*(*server)->NewStub(), GreedyTextRequest("Once upon a time", 4));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(result.status.error_message().find("text"), std::string::npos)
      << result.status.error_message();
}

}  // namespace
}  // namespace kvserve::testing
