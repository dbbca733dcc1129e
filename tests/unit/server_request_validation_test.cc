// GenerateRequest → EngineRequest: tokenization as the CLI does it, defaults of absent fields, and
// INVALID_ARGUMENT naming the field for everything wrong.
#include <gtest/gtest.h>

#include "engine/base/field_violation.h"
#include "engine/model/model_loader.h"
#include "engine/model/prompt_encoding.h"
#include "server/grpc_status.h"
#include "server/kv_policy_conversion.h"
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
  EXPECT_EQ(KindOf(*e->kv_policy), KvPolicyKind::kFull);
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

TEST_F(RequestValidationTest, KvPolicyOneofFieldsOverrideThePolicyDefaults) {
  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_snapkv()->set_window(4);
  r.mutable_kv_policy()->mutable_snapkv()->set_pool(v1::SCORE_POOLING_AVG);
  auto e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  const auto& snapkv = std::get<SnapKvOptions>(*e->kv_policy);
  EXPECT_EQ(snapkv.window, 4);
  EXPECT_EQ(snapkv.pool, ScorePooling::kAvg);
  EXPECT_EQ(snapkv.pool_kernel, SnapKvOptions{}.pool_kernel);
  // A tiered policy takes the server's page size.
  r.mutable_kv_policy()->mutable_freekv()->set_tau(0.5f);
  e = ToEngineRequest(r, {.config = model_->config,
                          .tokenizer = model_->tokenizer.get(),
                          .default_kv_policy = default_policy_,
                          .kv_page_size = 16});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(std::get<FreeKvOptions>(*e->kv_policy).page_size, 16);
  EXPECT_FLOAT_EQ(std::get<FreeKvOptions>(*e->kv_policy).tau, 0.5f);
}

TEST_F(RequestValidationTest, TheDeprecatedFlatFormStillWorks) {
  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_kv_policy()->set_name("snapkv");
  r.mutable_kv_policy()->set_window(4);
  r.mutable_kv_policy()->set_pool("avg");
  auto e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(std::get<SnapKvOptions>(*e->kv_policy).window, 4);
  EXPECT_EQ(std::get<SnapKvOptions>(*e->kv_policy).pool, ScorePooling::kAvg);
  // An option the named policy does not have is refused, naming the flat field.
  r.mutable_kv_policy()->set_tau(0.5f);
  EXPECT_EQ(Error(r), "kv_policy.tau is not an option of the snapkv policy");
}

TEST_F(RequestValidationTest, EmptyPolicyTakesTheServerDefault) {
  SnapKvOptions six;
  six.window = 6;
  default_policy_ = six;
  auto e = Convert(IdsRequest({1}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(std::get<SnapKvOptions>(*e->kv_policy).window, 6);
  // The default policy named in the oneof starts from the server's options too.
  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_snapkv()->set_budget(64);
  e = Convert(r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(std::get<SnapKvOptions>(*e->kv_policy).window, 6);
  EXPECT_EQ(std::get<SnapKvOptions>(*e->kv_policy).budget, 64);
}

TEST_F(RequestValidationTest, AnInvalidKvOptionNamesItsProtoFieldAsData) {
  v1::GenerateRequest r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_fastkv()->set_tsp_rate(1.5f);
  auto e = Convert(r);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "kv_policy.fastkv.tsp_rate must be in (0, 1], got 1.5");
  ASSERT_TRUE(FieldViolationOf(e.status()).has_value());
  EXPECT_EQ(FieldViolationOf(e.status())->path, "kv_policy.fastkv.tsp_rate");

  r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_freekv()->set_budget(1 << 30);
  EXPECT_EQ(Error(r).rfind("kv_policy.freekv.budget must be <= the model's context (512)", 0), 0u)
      << Error(r);
  r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_fastkv()->set_pool(static_cast<v1::ScorePooling>(7));
  EXPECT_EQ(Error(r),
            "kv_policy.fastkv.pool must be SCORE_POOLING_MAX or SCORE_POOLING_AVG, got 7");
  // The two forms are not mixed, and a name must agree with the oneof.
  r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_quest();
  r.mutable_kv_policy()->set_sink(4);
  EXPECT_EQ(Error(r),
            "kv_policy.sink belongs to the deprecated flat form; set kv_policy.quest.sink instead");
  r = IdsRequest({1});
  r.mutable_kv_policy()->mutable_quest();
  r.mutable_kv_policy()->set_name("freekv");
  EXPECT_EQ(Error(r).rfind("kv_policy.name 'freekv' names another policy", 0), 0u) << Error(r);
  r.mutable_kv_policy()->set_name("quest");
  EXPECT_TRUE(Convert(r).ok());
}

TEST(KvPolicyConversionTest, EveryPolicyRoundTripsThroughItsProtoMessage) {
  const ModelConfig config{.n_layers = 30, .context_length = 8192};
  for (size_t k = 0; k < KvPolicyNames().size(); ++k) {
    const auto kind = static_cast<KvPolicyKind>(k);
    KvPolicyOptions options = DefaultKvPolicyOptions(kind);
    // Every option off its default, so a field the proto message lacks would show.
    for (std::string_view name : KvOptionNames(kind)) {
      const KvOptionValue v = *GetKvOption(options, name);
      KvOptionValue changed = v;
      if (const int* i = std::get_if<int>(&v)) changed = *i + 3;
      if (const float* f = std::get_if<float>(&v)) changed = *f / 2;
      if (std::holds_alternative<ScorePooling>(v)) changed = ScorePooling::kAvg;
      ASSERT_TRUE(SetKvOption(options, name, changed).ok()) << name;
    }
    const v1::KvPolicy proto = ToProto(options, config);
    EXPECT_EQ(proto.name(), KvPolicyName(kind));
    const FullOptions unused_default;
    const KvPolicyOptions server_default = unused_default;
    auto back = ToKvPolicyOptions(proto, {.default_policy = server_default, .page_size = 32});
    ASSERT_TRUE(back.ok()) << KvPolicyName(kind) << ": " << back.status();
    ASSERT_EQ(KindOf(*back), kind);
    for (std::string_view name : KvOptionNames(kind)) {
      EXPECT_EQ(GetKvOption(*back, name), GetKvOption(options, name))
          << KvPolicyName(kind) << "." << name;
    }
  }
}

TEST_F(RequestValidationTest, InvalidFieldsAreNamed) {
  EXPECT_EQ(Error(v1::GenerateRequest()), "prompt is not set: set text, token_ids or chat");
  v1::GenerateRequest empty_text;
  empty_text.set_text("");
  EXPECT_EQ(Error(empty_text), "text is empty");
  EXPECT_EQ(Error(IdsRequest({})), "token_ids.ids is empty");
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
  EXPECT_EQ(Error(r),
            "sampling.max_new_tokens (600) plus the prompt's 1 tokens exceeds the model's context "
            "length 512");

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
  r.mutable_kv_policy()->mutable_fastkv()->set_tsp_rate(1.5f);
  EXPECT_EQ(Error(r).rfind("kv_policy.fastkv.tsp_rate must be in (0, 1]", 0), 0u) << Error(r);

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
