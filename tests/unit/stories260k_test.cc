// End-to-end on a real model: llama2.c checkpoint + tokenizer, CPU backend, greedy generation.
#include <gtest/gtest.h>

#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

TEST(Stories260KTest, GreedyFromBosMatchesLlama2c) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EXPECT_EQ(m.config.n_layers, 5);
  EXPECT_EQ(m.config.n_heads, 8);
  EXPECT_EQ(m.config.n_kv_heads, 4);
  EXPECT_EQ(m.config.vocab_size, 512);
  const std::vector<int32_t> expected = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                         315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
                                         410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
                                         426, 385, 328, 432, 358, 394, 261, 370, 432, 352};
  const std::vector<int32_t> got = Greedy(m, {1}, 40);
  EXPECT_EQ(got, expected);
  const std::string text = m.tokenizer->Decode(got);
  EXPECT_NE(text.find("Once upon a time, there was a little girl named Lily"), std::string::npos)
      << text;
}

TEST(Stories260KTest, ChunkedPrefillEqualsWholePrefill) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  GenerationRequest req{.prompt = prompt, .max_new_tokens = 12};
  BatchGenerator whole(*m.backend, {.prefill_chunk_tokens = 1024, .eos_id = 2});
  BatchGenerator chunked(*m.backend, {.prefill_chunk_tokens = 5, .eos_id = 2});
  auto a = whole.Generate(std::span(&req, 1));
  auto b = chunked.Generate(std::span(&req, 1));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->front().tokens, b->front().tokens);
}

}  // namespace
}  // namespace kvserve::testing
