#include "engine/model/stream_detokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/model/bpe_tokenizer.h"
#include "engine/model/sentencepiece_tokenizer.h"
#include "engine/model/utf8.h"
#include "tests/support/hf_tokenizer_json.h"
#include "tests/support/test_paths.h"

namespace kvserve {
namespace {

// Tokens with arbitrary bytes; token 0 is a special one.
class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(std::vector<std::string> tokens) {
    types_.assign(tokens.size(), TokenType::kNormal);
    if (!types_.empty()) types_[0] = TokenType::kControl;
    token_bytes_ = std::move(tokens);
    eos_id_ = 0;
  }
  std::vector<int32_t> Encode(std::string_view) const override { return {}; }
};

// Streams `ids`, checking every chunk is valid UTF-8; returns the chunks, the flush last.
std::vector<std::string> Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                bool skip_special = true) {
  StreamDetokenizer detokenizer(tokenizer, skip_special);
  std::vector<std::string> chunks;
  for (const int32_t id : ids) chunks.push_back(detokenizer.Push(id));
  chunks.push_back(detokenizer.Flush());
  for (const std::string& chunk : chunks) EXPECT_TRUE(IsValidUtf8(chunk)) << chunk;
  return chunks;
}

std::string Join(const std::vector<std::string>& chunks) {
  std::string text;
  for (const std::string& chunk : chunks) text += chunk;
  return text;
}

TEST(StreamDetokenizerTest, HoldsASplitCharacterUntilComplete) {
  // 😀 = F0 9F 98 80 over three tokens.
  const FakeTokenizer tokenizer({"</s>", "a", "\xF0\x9F", "\x98",
                                 "\x80"
                                 "b"});
  EXPECT_EQ(Stream(tokenizer, {1, 2, 3, 4}), (std::vector<std::string>{"a", "", "",
                                                                       "\xF0\x9F\x98\x80"
                                                                       "b",
                                                                       ""}));
}

TEST(StreamDetokenizerTest, IllFormedBytesBecomeReplacementOnceTheyCannotComplete) {
  const FakeTokenizer tokenizer({"</s>", "a", "\xE6", "\xFF", "\xF0\x9F"});
  // E6 waits; "a" proves it incomplete; FF is never valid; F0 9F is cut off by the end.
  EXPECT_EQ(Stream(tokenizer, {2, 1, 3, 4}), (std::vector<std::string>{"",
                                                                       "\uFFFD"
                                                                       "a",
                                                                       "\uFFFD", "", "\uFFFD"}));
}

TEST(StreamDetokenizerTest, SkipsSpecialTokensByDefault) {
  const FakeTokenizer tokenizer({"</s>", "a", "\xC3", "\xA9"});
  EXPECT_EQ(Join(Stream(tokenizer, {1, 0, 2, 0, 3})), "a\xC3\xA9");
  EXPECT_EQ(Join(Stream(tokenizer, {1, 0, 1}, /*skip_special=*/false)), "a</s>a");
}

TEST(StreamDetokenizerTest, ByteFallbackUnderSentencePiece) {
  if (!std::filesystem::exists(testing::Stories260KTokenizerPath())) {
    GTEST_SKIP() << "tok512.bin not found";
  }
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::LoadLlama2c(testing::Stories260KTokenizerPath(), 512);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<int32_t> ids = (*tokenizer)->Encode("Lily saw 日本 and 😀 at the park.");
  const std::vector<std::string> chunks = Stream(**tokenizer, ids);
  EXPECT_EQ(Join(chunks), (*tokenizer)->Decode(ids));
  EXPECT_EQ(Join(chunks), " Lily saw 日本 and 😀 at the park.");
  // Some token completed nothing: a character was held back.
  EXPECT_NE(std::count(chunks.begin(), chunks.end() - 1, ""), 0);
}

TEST(StreamDetokenizerTest, SplitEmojiUnderByteLevelBpe) {
  const std::string path = testing::SmolLm2TokenizerJsonPath();
  if (path.empty()) GTEST_SKIP() << "SmolLM2 tokenizer.json not found";
  absl::StatusOr<BpeTokenizer::Options> options =
      testing::BpeOptionsFromHfTokenizerJson(path, "smollm", 1, 2);
  ASSERT_TRUE(options.ok()) << options.status();
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer =
      BpeTokenizer::Create(std::move(*options));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = "Family: 👨‍👩‍👧‍👦, 日本語, café 👍🏽!";
  std::vector<int32_t> ids = (*tokenizer)->Encode(text);
  ids.push_back((*tokenizer)->eos_id());
  const std::vector<std::string> chunks = Stream(**tokenizer, ids);
  EXPECT_EQ(Join(chunks), text);
  EXPECT_EQ(Join(Stream(**tokenizer, ids, /*skip_special=*/false)), (*tokenizer)->Decode(ids));
}

}  // namespace
}  // namespace kvserve
