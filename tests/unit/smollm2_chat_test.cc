// The default model, real weights: greedy chat answers to simple factual questions.
#include <gtest/gtest.h>

#include "engine/model/chat_template.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

TEST(SmolLm2ChatTest, AnswersSimpleFactualQuestions) {
  CpuModel m = LoadSmolLm2();
  if (m.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  EXPECT_EQ(m.config.n_layers, 30);
  EXPECT_EQ(m.config.n_heads, 9);
  EXPECT_EQ(m.config.n_kv_heads, 3);
  EXPECT_EQ(m.config.head_dim, 64);
  EXPECT_EQ(m.config.context_length, 8192);
  const ChatTemplate chat(m.chat_template);
  ASSERT_EQ(chat.style(), ChatTemplate::Style::kChatMl);
  const std::pair<const char*, const char*> cases[] = {
      {"What is the capital of France?", "Paris"},
      {"What is the capital of Japan?", "Tokyo"},
      {"What is 2 + 2?", "4"},
      {"What is the chemical symbol for water?", "H2O"},
      {"How many days are in a week?", "7"},
  };
  for (const auto& [question, answer] : cases) {
    const std::vector<ChatMessage> messages = {{"user", question}};
    auto prompt = chat.Apply(messages, /*add_generation_prompt=*/true);
    ASSERT_TRUE(prompt.ok());
    const std::vector<int32_t> out = Greedy(m, m.tokenizer->Encode(*prompt), 24);
    ASSERT_FALSE(out.empty());
    const std::string text = m.tokenizer->Decode(out);
    EXPECT_NE(text.find(answer), std::string::npos) << question << " -> " << text;
  }
}

}  // namespace
}  // namespace kvserve::testing
