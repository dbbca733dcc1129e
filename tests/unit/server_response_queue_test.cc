// The per-stream queue's flow control: bounded, merging deltas into the last message when full.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/response_conversion.h"
#include "server/response_queue.h"

namespace kvserve::server {
namespace {

v1::GenerateResponse Delta(int token, int completion) {
  v1::GenerateResponse r;
  r.set_request_id("r");
  r.add_token_ids(token);
  r.set_text(absl::StrCat("<", token, ">"));
  r.add_logprobs()->set_token_id(token);
  r.set_prompt_tokens(3);
  r.set_completion_tokens(completion);
  return r;
}

v1::GenerateResponse Final(int token, int completion) {
  v1::GenerateResponse r = Delta(token, completion);
  r.set_finish_reason(v1::FINISH_REASON_STOP_SEQUENCE);
  r.set_matched_stop("end");
  r.mutable_usage()->set_completion_tokens(completion);
  r.mutable_timing()->set_e2e_ms(12.5);
  r.mutable_kv()->set_policy("full");
  return r;
}

TEST(ResponseQueueTest, QueuesUpToCapacityThenMergesIntoTheLast) {
  ResponseQueue queue(2);
  queue.Push(Delta(10, 1));
  queue.Push(Delta(11, 2));
  queue.Push(Delta(12, 3));  // full: merges into the second
  queue.Push(Final(13, 4));  // merges too, bringing the final fields
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue.merged(), 2u);
  EXPECT_TRUE(IsFinal(queue.back()));

  const v1::GenerateResponse first = queue.Pop();
  EXPECT_EQ(first.token_ids_size(), 1);
  EXPECT_FALSE(IsFinal(first));
  const v1::GenerateResponse last = queue.Pop();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(std::vector<int>(last.token_ids().begin(), last.token_ids().end()),
            (std::vector<int>{11, 12, 13}));
  EXPECT_EQ(last.text(), "<11><12><13>");
  ASSERT_EQ(last.logprobs_size(), 3);
  EXPECT_EQ(last.logprobs(2).token_id(), 13);
  EXPECT_EQ(last.completion_tokens(), 4u);
  EXPECT_EQ(last.prompt_tokens(), 3u);
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(last.matched_stop(), "end");
  EXPECT_EQ(last.usage().completion_tokens(), 4u);
  EXPECT_EQ(last.timing().e2e_ms(), 12.5);
  EXPECT_EQ(last.kv().policy(), "full");
}

TEST(ResponseQueueTest, PopAllMergesEverythingQueuedInOrder) {
  ResponseQueue queue(8);
  queue.Push(Delta(10, 1));
  queue.Push(Delta(11, 2));
  queue.Push(Final(12, 3));
  const v1::GenerateResponse all = queue.PopAll();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(std::vector<int32_t>(all.token_ids().begin(), all.token_ids().end()),
            (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(all.completion_tokens(), 3u);
  EXPECT_EQ(all.finish_reason(), v1::FINISH_REASON_STOP_SEQUENCE);  // the last one's final fields
  EXPECT_EQ(queue.merged(), 2u);
  queue.Push(Delta(13, 4));
  EXPECT_EQ(queue.PopAll().token_ids_size(), 1);
}

TEST(ResponseQueueTest, CapacityOneAccumulatesEverything) {
  ResponseQueue queue(1);
  for (int i = 0; i < 100; ++i) queue.Push(Delta(i, i + 1));
  queue.Push(Final(100, 101));
  ASSERT_EQ(queue.size(), 1u);
  const v1::GenerateResponse all = queue.Pop();
  EXPECT_EQ(all.token_ids_size(), 101);
  EXPECT_EQ(all.completion_tokens(), 101u);
  EXPECT_TRUE(IsFinal(all));
}

TEST(ResponseConversionTest, FinalOutputCarriesUsageTimingAndKvStats) {
  SequenceOutput o;
  o.request_id = "x";
  o.tokens = {5, 6};
  o.text = "hi";
  o.prompt_tokens = 4;
  o.completion_tokens = 7;
  o.finished = true;
  o.finish_reason = FinishReason::kDeadline;
  o.timing.ttft_ms = 3;
  o.timing.e2e_ms = 9;
  o.kv.policy = "snapkv";
  o.kv.kept_tokens = {4, 4};
  o.kv.recalled_bytes = 1024;
  o.preemptions = 2;
  o.logprobs.push_back({.token = 5, .logprob = -0.5f, .top = {{5, -0.5f}, {9, -1.5f}}});
  const v1::GenerateResponse r = ToGenerateResponse(std::move(o), nullptr);
  EXPECT_EQ(r.request_id(), "x");
  EXPECT_EQ(r.token_ids_size(), 2);
  EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(r.usage().prompt_tokens(), 4u);
  EXPECT_EQ(r.usage().completion_tokens(), 7u);
  EXPECT_EQ(r.timing().ttft_ms(), 3);
  EXPECT_EQ(r.timing().e2e_ms(), 9);
  EXPECT_EQ(r.kv().policy(), "snapkv");
  EXPECT_EQ(r.kv().kept_tokens_size(), 2);
  EXPECT_EQ(r.kv().recalled_bytes(), 1024u);
  EXPECT_EQ(r.kv().preemptions(), 2u);
  ASSERT_EQ(r.logprobs_size(), 1);
  EXPECT_EQ(r.logprobs(0).top_size(), 2);
  EXPECT_EQ(r.logprobs(0).top(1).token_id(), 9);
}

TEST(ResponseConversionTest, IntermediateOutputHasNoFinalFields) {
  SequenceOutput o;
  o.tokens = {1};
  o.completion_tokens = 1;
  const v1::GenerateResponse r = ToGenerateResponse(std::move(o), nullptr);
  EXPECT_FALSE(IsFinal(r));
  EXPECT_FALSE(r.has_usage());
  EXPECT_FALSE(r.has_timing());
  EXPECT_FALSE(r.has_kv());
}

}  // namespace
}  // namespace kvserve::server
