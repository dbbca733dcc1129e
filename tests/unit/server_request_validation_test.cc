// GenerateRequest → EngineRequest: tokenization as the CLI does it, defaults of absent fields, and
// INVALID_ARGUMENT naming the field for everything wrong.
#include <gtest/gtest.h>

#include "engine/model/model_loader.h"
#include "engine/model/prompt_encoding.h"
#include "server/grpc_status.h"
#include "server/request_validation.h"
#include "tests/support/test_paths.h"

namespace kvserve::server {
namespace {

class RequestValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = LoadModel({.model = testing::Stories260KModelPath(),
                            .tokenizer = testing::Stories260KTokenizerPath()});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new LoadedModel(*std::move(model));
  }
  static void TearDownTestSuite() { delete model_; }

  absl::StatusOr<EngineRequest> Convert(const v1::GenerateRequest& r) {
    return ToEngineRequest(r, {.config = model_->config,
                               .tokenizer = model_->tokenizer.get(),
                               .chat_template = model_->chat_template,
                               .default_kv_policy = default_policy_});
  }
  // The error message of converting `r`, which must fail with INVALID_ARGUMENT.
  std::string Error(const v1::GenerateRequest& r) {
    auto converted = Convert(r);
    EXPECT_FALSE(converted.ok());
    if (converted.ok()) return "";
    EXPECT_EQ(ToGrpcStatus(converted.status()).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << converted.status();
    return std::string(converted.status().message());
  }

  static LoadedModel* model_;
  KvPolicyOptions default_policy_;
};
LoadedModel* RequestValidationTest::model_ = nullptr;

v1::GenerateRequest IdsRequest(std::vector<int32_t> ids) {
  v1::GenerateRequest r;
  r.mutable_token_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  return r;
}

TEST_F(RequestValidationTest, TextPromptGetsBosLikeTheCli) {
  v1::GenerateRequest r;
  r.set_text("Once upon a time");
  auto e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->prompt, EncodePromptText(*model_->tokenizer, "Once upon a time"));
  EXPECT_EQ(e->prompt.front(), model_->tokenizer->bos_id());
}

TEST_F(RequestValidationTest, TokenIdsAreUsedAsGivenAndDefaultsApply) {
  auto e = Convert(IdsRequest({5, 6, 7}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->prompt, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(e->max_new_tokens, 16);
  EXPECT_EQ(e->sampling.temperature, 1.0f);
  EXPECT_EQ(e->sampling.top_p, 1.0f);
  EXPECT_EQ(e->sampling.repetition_penalty, 1.0f);
  EXPECT_FALSE(e->sampling.seed.has_value());
  EXPECT_EQ(e->kv_policy.name, "full");
  EXPECT_TRUE(e->id.empty());
}

TEST_F(RequestValidationTest, SamplingFieldsCarryOver) {
  v1::GenerateRequest r = IdsRequest({1});
  v1::SamplingOptions* s = r.mutable_sampling();
  s->set_max_new_tokens(40);
  s->set_min_new_tokens(3);
  s->set_temperature(0);
  s->set_top_k(5);
  s->set_top_p(0.9f);
  s->set_seed(42);
  s->add_stop("Lily");
  s->add_stop_token_ids(13);
  s->set_ignore_eos(true);
  s->set_logprobs(3);
  auto e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->max_new_tokens, 40);
  EXPECT_EQ(e->min_new_tokens, 3);
  EXPECT_EQ(e->sampling.temperature, 0.0f);
  EXPECT_EQ(e->sampling.top_k, 5);
  EXPECT_FLOAT_EQ(e->sampling.top_p, 0.9f);
  EXPECT_EQ(e->sampling.seed, 42u);
  EXPECT_EQ(e->stop, std::vector<std::string>{"Lily"});
  EXPECT_EQ(e->stop_token_ids, std::vector<int32_t>{13});
  EXPECT_TRUE(e->ignore_eos);
  EXPECT_EQ(e->logprobs, 3);
}

TEST_F(RequestValidationTest, KvPolicyFieldsOverrideThePolicyDefaults) {
  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_kv_policy()->set_name("snapkv");
  r.mutable_kv_policy()->set_window(4);
  r.mutable_kv_policy()->set_pool("avg");
  auto e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kv_policy.name, "snapkv");
  EXPECT_EQ(e->kv_policy.window, 4);
  EXPECT_EQ(e->kv_policy.pool, ScorePooling::kAvg);
  EXPECT_EQ(e->kv_policy.pool_kernel, KvPolicyOptions{}.pool_kernel);
}

TEST_F(RequestValidationTest, EmptyPolicyNameTakesTheServerDefault) {
  default_policy_ = KvPolicyOptions{.name = "snapkv", .window = 6};
  auto e = Convert(IdsRequest({1}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kv_policy.name, "snapkv");
  EXPECT_EQ(e->kv_policy.window, 6);
}

TEST_F(RequestValidationTest, InvalidFieldsAreNamed) {
  EXPECT_EQ(Error(v1::GenerateRequest()), "prompt is empty: set text, token_ids or chat");
  v1::GenerateRequest empty_text;
  empty_text.set_text("");
  EXPECT_EQ(Error(empty_text), "prompt is empty");
  EXPECT_EQ(Error(IdsRequest({})), "prompt is empty");
  EXPECT_EQ(Error(IdsRequest({1, 512})),
            "token_ids.ids[1] = 512 is outside the vocabulary [0, 512)");

  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_sampling()->set_top_p(1.5f);
  EXPECT_EQ(Error(r), "sampling.top_p must be in (0, 1], got 1.5");

  r = IdsRequest({1});
  r.mutable_sampling()->set_max_new_tokens(0);
  EXPECT_EQ(Error(r), "sampling.max_new_tokens must be >= 1, got 0");

  r = IdsRequest({1});
  r.mutable_sampling()->set_max_new_tokens(600);
  EXPECT_NE(Error(r).find("exceeds the model's context length 512"), std::string::npos);

  r = IdsRequest({1});
  r.mutable_sampling()->set_temperature(-1);
  EXPECT_NE(Error(r).find("sampling.temperature"), std::string::npos);

  r = IdsRequest({1});
  r.mutable_sampling()->set_logprobs(21);
  EXPECT_EQ(Error(r), "sampling.logprobs must be <= 20, got 21");

  r = IdsRequest({1});
  r.mutable_sampling()->add_stop("");
  EXPECT_EQ(Error(r), "sampling.stop[0] is empty");

  r = IdsRequest({1});
  r.mutable_sampling()->add_stop_token_ids(-3);
  EXPECT_NE(Error(r).find("sampling.stop_token_ids[0] = -3"), std::string::npos);

  r = IdsRequest({1});
  r.mutable_sampling()->set_min_new_tokens(20);
  EXPECT_NE(Error(r).find("sampling.min_new_tokens"), std::string::npos);

  r = IdsRequest({1});
  r.mutable_kv_policy()->set_name("fastkv");
  r.mutable_kv_policy()->set_tsp_rate(1.5f);
  EXPECT_EQ(Error(r).rfind("kv_policy.tsp_rate must be in (0, 1]", 0), 0u) << Error(r);

  r = IdsRequest({1});
  r.mutable_kv_policy()->set_pool("median");
  EXPECT_EQ(Error(r), "kv_policy.pool must be max or avg, got 'median'");

  r = IdsRequest({1});
  r.mutable_kv_policy()->set_name("magic");
  EXPECT_EQ(Error(r).rfind("kv_policy.name", 0), 0u) << Error(r);

  r.Clear();
  r.mutable_chat()->add_messages()->set_role("robot");
  EXPECT_EQ(Error(r), "chat.messages[0].role must be system, user or assistant, got 'robot'");
}

TEST(GrpcStatusTest, CodesMapOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status s = ToGrpcStatus(absl::ResourceExhaustedError("queue full"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(), "queue full");
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcStatus(absl::UnimplementedError("x")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace kvserve::server
