// The generation loop: batching must not change results, and bad requests fail before any work.
#include "engine/scheduler/batch_generator.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int32_t> d(3, vocab - 1);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(d(rng));
  return p;
}

void ExpectBatchEqualsAlone(CpuModel& m, const std::vector<int>& lengths, int max_new) {
  std::mt19937 rng(7);
  std::vector<GenerationRequest> reqs;
  for (int len : lengths) {
    reqs.push_back(
        {.prompt = RandomPrompt(rng, len, m.config.vocab_size), .max_new_tokens = max_new});
  }
  // A small chunk budget also mixes prompt chunks of several sequences in one step.
  BatchGenerator gen(*m.backend, {.prefill_chunk_tokens = 48, .eos_id = m.tokenizer->eos_id()});
  auto together = gen.Generate(reqs);
  ASSERT_TRUE(together.ok()) << together.status();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto alone = gen.Generate(std::span(&reqs[i], 1));
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ((*together)[i].tokens, alone->front().tokens) << "sequence " << i;
    EXPECT_EQ((*together)[i].finish_reason, alone->front().finish_reason);
  }
}

TEST(BatchGeneratorTest, Stories260KBatchEqualsEachAlone) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  ExpectBatchEqualsAlone(m, {1, 7, 33, 2, 100, 64}, 24);
}

TEST(BatchGeneratorTest, SmolLm2BatchEqualsEachAlone) {
  CpuModel m = LoadSmolLm2();
  if (m.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  ExpectBatchEqualsAlone(m, {5, 90, 17, 140}, 8);
}

TEST(BatchGeneratorTest, StopsAtStopTokenAndMaxTokens) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  BatchGenerator gen(*m.backend, {.eos_id = 2});
  // Greedy from BOS starts 403 407 261: stopping on 261 ends after three tokens.
  GenerationRequest stop{.prompt = {1}, .max_new_tokens = 20, .stop_token_ids = {261}};
  GenerationRequest len{.prompt = {1}, .max_new_tokens = 2};
  std::vector<GenerationRequest> reqs = {stop, len};
  auto r = gen.Generate(reqs);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].tokens, (std::vector<int32_t>{403, 407, 261}));
  EXPECT_EQ((*r)[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ((*r)[1].tokens.size(), 2u);
  EXPECT_EQ((*r)[1].finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ((*r)[1].kv.kept_tokens, std::vector<int>(5, 2));  // prompt + first generated token
}

TEST(BatchGeneratorTest, SeededSamplingReproducesAndIsIndependentOfBatch) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  BatchGenerator gen(*m.backend, {.eos_id = 2});
  GenerationRequest a{.prompt = {1}, .max_new_tokens = 30};
  a.sampling = {.temperature = 1.0f, .top_p = 0.9f, .seed = 42};
  GenerationRequest b = a;
  b.sampling.seed = 43;
  auto alone = gen.Generate(std::span(&a, 1));
  std::vector<GenerationRequest> both = {a, b};
  auto together = gen.Generate(both);
  ASSERT_TRUE(alone.ok() && together.ok());
  EXPECT_EQ(alone->front().tokens, (*together)[0].tokens);
  EXPECT_NE((*together)[0].tokens, (*together)[1].tokens);
}

TEST(BatchGeneratorTest, InvalidRequestsFailWithTheirReason) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  BatchGenerator gen(*m.backend, {.eos_id = 2});
  auto expect_error = [&](GenerationRequest r, const std::string& fragment) {
    auto res = gen.Generate(std::span(&r, 1));
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(res.status().message()).find(fragment), std::string::npos)
        << res.status();
  };
  expect_error({.prompt = {}, .max_new_tokens = 4}, "prompt is empty");
  expect_error({.prompt = {1, 512}, .max_new_tokens = 4}, "prompt[1] = 512");
  expect_error({.prompt = {1, -3}, .max_new_tokens = 4}, "prompt[1] = -3");
  expect_error({.prompt = {1}, .max_new_tokens = 0}, "max_tokens");
  expect_error({.prompt = std::vector<int32_t>(500, 1), .max_new_tokens = 13},
               "context length 512");
  GenerationRequest bad_sampling{.prompt = {1}, .max_new_tokens = 4};
  bad_sampling.sampling.top_p = 1.5f;
  expect_error(bad_sampling, "top_p");
}

}  // namespace
}  // namespace kvserve::testing
