// Caps on size-like request fields (checked before tokenizing), the receive limit's derivation,
// log-safe ids, and the conversion refusing what the caps refuse.
#include "server/request_limits.h"

#include <gtest/gtest.h>

#include <new>
#include <string>

#include "engine/model/model_loader.h"
#include "server/request_validation.h"
#include "tests/support/test_paths.h"

namespace kvserve::server {
namespace {

v1::GenerateRequest TextRequest(std::string text) {
  v1::GenerateRequest r;
  r.set_text(std::move(text));
  return r;
}

std::string Check(const v1::GenerateRequest& r, const RequestLimits& limits = {}, int context = 512,
                  int max_token_bytes = 8) {
  const absl::Status s = CheckRequestLimits(r, limits, context, max_token_bytes);
  if (s.ok()) return "ok";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

TEST(RequestLimitsTest, PromptTextIsMeasuredAgainstWhatTheContextHolds) {
  // 512 tokens of at most 8 bytes: 4096 bytes fit, 4097 cannot.
  EXPECT_EQ(Check(TextRequest(std::string(4096, 'a'))), "ok");
  EXPECT_EQ(Check(TextRequest(std::string(4097, 'a'))),
            "text is 4097 bytes, more than the model's context of 512 tokens can hold (4096 "
            "bytes)");
  v1::GenerateRequest chat;
  chat.mutable_chat()->add_messages()->set_content(std::string(3000, 'a'));
  chat.mutable_chat()->add_messages()->set_content(std::string(1100, 'b'));
  EXPECT_NE(Check(chat).find("chat.messages hold 4100 bytes"), std::string::npos);
  v1::GenerateRequest ids;
  for (int i = 0; i < 513; ++i) ids.mutable_token_ids()->add_ids(1);
  EXPECT_NE(Check(ids).find("token_ids.ids has 513 tokens"), std::string::npos);
}

TEST(RequestLimitsTest, EachCapIsAFlagValue) {
  RequestLimits limits;
  limits.max_stop_strings = 2;
  limits.max_stop_string_bytes = 4;
  limits.max_stop_token_ids = 1;
  limits.max_request_id_bytes = 8;
  limits.max_logprobs = 3;
  limits.max_chat_messages = 2;

  v1::GenerateRequest r = TextRequest("hi");
  for (const char* stop : {"a", "b", "c"}) r.mutable_sampling()->add_stop(stop);
  EXPECT_EQ(Check(r, limits),
            "sampling.stop has 3 entries; this server accepts at most 2 (--max-stop-strings)");
  r.mutable_sampling()->clear_stop();
  r.mutable_sampling()->add_stop("12345");
  EXPECT_EQ(Check(r, limits),
            "sampling.stop[0] is 5 bytes; this server accepts at most 4 (--max-stop-string-bytes)");
  r.mutable_sampling()->clear_stop();
  r.mutable_sampling()->add_stop_token_ids(1);
  r.mutable_sampling()->add_stop_token_ids(2);
  EXPECT_NE(Check(r, limits).find("--max-stop-token-ids"), std::string::npos);
  r.mutable_sampling()->clear_stop_token_ids();
  r.mutable_sampling()->set_logprobs(4);
  EXPECT_EQ(Check(r, limits), "sampling.logprobs must be <= 3, got 4");
  r.mutable_sampling()->set_logprobs(3);
  EXPECT_EQ(Check(r, limits), "ok");
  r.set_request_id("123456789");
  EXPECT_EQ(Check(r, limits),
            "request_id is 9 bytes; this server accepts at most 8 (--max-request-id-bytes)");
  r.set_request_id("a\nb");
  EXPECT_EQ(Check(r, limits), "request_id must not contain control characters");

  v1::GenerateRequest chat;
  for (int i = 0; i < 3; ++i) chat.mutable_chat()->add_messages()->set_content("x");
  EXPECT_NE(Check(chat, limits).find("--max-chat-messages"), std::string::npos);
}

TEST(RequestLimitsTest, DefaultsRefuseAHundredThousandStopStrings) {
  v1::GenerateRequest r = TextRequest("hi");
  auto* stops = r.mutable_sampling()->mutable_stop();
  stops->Reserve(100000);
  const std::string stop = "stop";
  for (int i = 0; i < 100000; ++i) *stops->Add() = stop;
  EXPECT_NE(Check(r).find("at most 16"), std::string::npos);
  v1::GenerateRequest id = TextRequest("hi");
  id.set_request_id(std::string(1 << 20, 'x'));
  EXPECT_NE(Check(id).find("request_id is 1048576 bytes"), std::string::npos);
}

TEST(RequestLimitsTest, ReceiveLimitFollowsTheContext) {
  EXPECT_EQ(ReceiveLimitBytes(8192), 8192 * kReceiveBytesPerToken + kReceiveMarginBytes);
  EXPECT_LT(ReceiveLimitBytes(8192), int64_t{2} << 20);  // a 30 MB prompt is not even received
  EXPECT_EQ(MaxPromptBytes(512, 0), 512);                // no overflow, no zero
  EXPECT_EQ(MaxPromptBytes(1 << 30, 1 << 20), int64_t{1} << 50);
}

TEST(RequestLimitsTest, ContextLengthIsReadWithoutLoadingWeights) {
  auto stories = ReadContextLength({.model = testing::Stories260KModelPath()});
  ASSERT_TRUE(stories.ok()) << stories.status();
  EXPECT_EQ(*stories, 512);
  auto synthetic = ReadContextLength({.model = "synthetic:smollm2-135m"});
  ASSERT_TRUE(synthetic.ok()) << synthetic.status();
  EXPECT_EQ(*synthetic, 8192);
  EXPECT_FALSE(ReadContextLength({.model = "/nonexistent"}).ok());
}

TEST(RequestLimitsTest, LoggedIdsAreShortAndPrintable) {
  EXPECT_EQ(LoggedId("req-1"), "req-1");
  EXPECT_EQ(LoggedId("a\nb"), "a\\x0ab");
  const std::string logged = LoggedId(std::string(1 << 20, 'x'));
  EXPECT_EQ(logged.size(), kLoggedIdBytes + std::string_view("...(1048576 bytes)").size());
  EXPECT_TRUE(logged.ends_with("xx...(1048576 bytes)")) << logged;
}

TEST(RequestLimitsTest, ConversionAppliesTheLimitsBeforeTokenizing) {
  auto model = LoadModel(
      {.model = testing::Stories260KModelPath(), .tokenizer = testing::Stories260KTokenizerPath()});
  ASSERT_TRUE(model.ok()) << model.status();
  const int longest = MaxTokenBytes(*model->tokenizer);
  EXPECT_GT(longest, 1);
  const KvPolicyOptions policy = FullOptions{};
  RequestLimits limits;
  limits.max_stop_strings = 1;
  const RequestContext context{.config = model->config,
                               .tokenizer = model->tokenizer.get(),
                               .chat_template = model->chat_template,
                               .default_kv_policy = policy,
                               .limits = &limits,
                               .max_token_bytes = longest};
  v1::GenerateRequest r = TextRequest(std::string(512 * longest + 1, 'a'));
  auto converted = ToEngineRequest(r, context);
  ASSERT_FALSE(converted.ok());
  EXPECT_NE(converted.status().message().find("more than the model's context"), std::string::npos);
  v1::GenerateRequest stops = TextRequest("Once upon a time");
  stops.mutable_sampling()->add_stop("a");
  stops.mutable_sampling()->add_stop("b");
  EXPECT_NE(ToEngineRequest(stops, context).status().message().find("--max-stop-strings"),
            std::string::npos);
}

}  // namespace
}  // namespace kvserve::server
