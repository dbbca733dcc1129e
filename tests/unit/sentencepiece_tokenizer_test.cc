#include "engine/model/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/test_paths.h"

namespace kvserve {
namespace {

const SentencePieceTokenizer* Tok512() {
  static const std::unique_ptr<SentencePieceTokenizer> tokenizer =
      []() -> std::unique_ptr<SentencePieceTokenizer> {
    absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> loaded =
        SentencePieceTokenizer::LoadLlama2c(testing::Stories260KTokenizerPath(), 512);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? std::move(*loaded) : nullptr;
  }();
  return tokenizer.get();
}

class Tok512Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::Stories260KTokenizerPath())) {
      GTEST_SKIP() << "tok512.bin not found";
    }
    ASSERT_NE(Tok512(), nullptr);
  }
  const SentencePieceTokenizer& tokenizer() const { return *Tok512(); }
};

TEST_F(Tok512Test, MatchesLlama2cEncode) {
  // From a line-by-line Python port of llama2.c's run.c encode(text, bos=0, eos=0).
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"Once upon a time", {403, 407, 261, 378}},
      {"Hello world!", {346, 306, 414, 263, 304, 341, 443}},
      {"Lily and Tom went to the park. They played ball.",
       {317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433, 426, 342, 337, 266, 268, 388, 426}},
      {"  two  spaces\nnewline\ttab", {410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419,
                                       13,  416, 411, 424, 421, 271, 411, 12,  413, 412, 430}},
      {"café", {280, 412, 431, 485}},
      {"I'm 12 years old", {359, 439, 423, 410, 475, 479, 348, 411, 295, 419, 334, 341}},
      {"a", {261}},
      {"The cat sat on the mat, and the dog barked loudly.",
       {291, 280, 294, 262, 294, 353, 265, 284, 294, 432, 269, 265,
        400, 428, 268, 295, 355, 278, 277, 418, 421, 422, 426}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(tokenizer().Encode(text), ids) << text;
  EXPECT_TRUE(tokenizer().Encode("").empty());
}

TEST_F(Tok512Test, CharactersOutsideTheVocabFallBackToBytes) {
  // 日 = E6 97 A5, 本 = E6 9C AC, 😀 = F0 9F 98 80; byte b is token b + 3.
  EXPECT_EQ(tokenizer().Encode("日本"), (std::vector<int32_t>{410, 233, 154, 168, 233, 159, 175}));
  EXPECT_EQ(tokenizer().Encode("😀 ok"), (std::vector<int32_t>{410, 243, 162, 155, 131, 334, 433}));
  EXPECT_EQ(tokenizer().TokenBytes(233), "\xE6");
  EXPECT_EQ(tokenizer().TokenBytes(3 + '\n'), "\n");
}

TEST_F(Tok512Test, DecodeInvertsEncodeAfterTheDummyPrefix) {
  for (const std::string text : {"Once upon a time", "  two  spaces\n\nnewline\ttab ", "café",
                                 "日本語 and 😀👍🏽", "Ünïcödé ÅÄÖ", "x"}) {
    EXPECT_EQ(tokenizer().Decode(tokenizer().Encode(text)), " " + text) << text;
  }
}

TEST_F(Tok512Test, IllFormedUtf8FallsBackToItsBytes) {
  const std::string text = "a\xFF\xE6\x97 b\xC3";
  const std::vector<int32_t> ids = tokenizer().Encode(text);
  std::string bytes;
  for (const int32_t id : ids) bytes += tokenizer().TokenBytes(id);
  EXPECT_EQ(bytes, " " + text);
  EXPECT_EQ(tokenizer().Decode(ids), " a\uFFFD\uFFFD b\uFFFD");
}

TEST_F(Tok512Test, SpecialTokens) {
  EXPECT_EQ(tokenizer().vocab_size(), 512);
  EXPECT_EQ(tokenizer().bos_id(), 1);
  EXPECT_EQ(tokenizer().eos_id(), 2);
  EXPECT_TRUE(tokenizer().add_bos());
  EXPECT_TRUE(tokenizer().IsSpecial(0));
  EXPECT_TRUE(tokenizer().IsSpecial(1));
  EXPECT_TRUE(tokenizer().IsSpecial(2));
  EXPECT_FALSE(tokenizer().IsSpecial(3));
  EXPECT_FALSE(tokenizer().IsSpecial(403));
  EXPECT_EQ(tokenizer().TokenBytes(1), "<s>");
  EXPECT_EQ(tokenizer().TokenBytes(2), "</s>");
  EXPECT_EQ(tokenizer().TokenBytes(410), " ");
  EXPECT_EQ(tokenizer().TokenBytes(512), "");
  // Special text maps to its id, and the text after it gets the dummy prefix again.
  std::vector<int32_t> expected = {1};
  for (const int32_t id : tokenizer().Encode("Once")) expected.push_back(id);
  expected.push_back(2);
  EXPECT_EQ(tokenizer().Encode("<s>Once</s>"), expected);
}

TEST_F(Tok512Test, DecodesTheGoldenGreedyStory) {
  // stories260K's greedy continuation of BOS (llama2.c run.c, temperature 0).
  const std::vector<int32_t> ids = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                    315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
                                    410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
                                    426, 385, 328, 432, 358, 394, 261, 370, 432, 352};
  const std::string text = tokenizer().Decode(ids);
  EXPECT_TRUE(text.starts_with(" Once upon a time, there was a little girl named Lily. She loved"))
      << text;
}

class Llama2cFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::Stories260KTokenizerPath())) {
      GTEST_SKIP() << "tok512.bin not found";
    }
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // The first `size` bytes of tok512.bin.
  std::string TruncatedCopy(size_t size) {
    std::ifstream in(testing::Stories260KTokenizerPath(), std::ios::binary);
    std::string data(size, '\0');
    in.read(data.data(), static_cast<std::streamsize>(size));
    const std::string path = dir_ + "/tok.bin";
    std::ofstream(path, std::ios::binary).write(data.data(), in.gcount());
    return path;
  }
  std::string dir_;
};

TEST_F(Llama2cFileTest, TruncatedFileIsAnError) {
  for (const size_t size : {size_t{2}, size_t{100}, size_t{3000}}) {
    const absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
        SentencePieceTokenizer::LoadLlama2c(TruncatedCopy(size), 512);
    ASSERT_FALSE(tokenizer.ok()) << size;
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(tokenizer.status().ToString().find("is truncated"), std::string::npos)
        << tokenizer.status();
  }
}

TEST_F(Llama2cFileTest, VocabLargerThanTheFileIsAnError) {
  const absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::LoadLlama2c(testing::Stories260KTokenizerPath(), 32000);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().ToString().find("token 512 of 32000"), std::string::npos)
      << tokenizer.status();
}

TEST_F(Llama2cFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(SentencePieceTokenizer::LoadLlama2c(dir_ + "/none.bin", 512).status().code(),
            absl::StatusCode::kNotFound);
}

// A vocab with all 256 byte tokens (ids 3..258) after <unk> <s> </s>, then `pieces`.
SentencePieceTokenizer::Options SmallOptions(
    const std::vector<std::pair<std::string, float>>& pieces) {
  SentencePieceTokenizer::Options options;
  options.tokens = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    options.tokens.push_back(name);
  }
  options.scores.assign(options.tokens.size(), 0.0f);
  for (const auto& [piece, score] : pieces) {
    options.tokens.push_back(piece);
    options.scores.push_back(score);
  }
  options.unk_id = 0;
  options.bos_id = 1;
  options.eos_id = 2;
  return options;
}

TEST(SentencePieceTokenizerTest, MergesHighestScoreFirstLeftmostOnTies) {
  // Ids from 259: ▁ a b ab ▁a bb ba.
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::Create(SmallOptions({{"\u2581", -1},
                                                   {"a", -1},
                                                   {"b", -1},
                                                   {"ab", -2},
                                                   {"\u2581a", -1.5},
                                                   {"bb", -2},
                                                   {"ba", -2}}));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // ▁a outscores ab.
  EXPECT_EQ((*tokenizer)->Encode("ab"), (std::vector<int32_t>{263, 261}));
  EXPECT_EQ((*tokenizer)->Encode("b abb"), (std::vector<int32_t>{259, 261, 263, 264}));
  // ba and ab tie: the leftmost pair merges.
  EXPECT_EQ((*tokenizer)->Encode("bab"), (std::vector<int32_t>{259, 265, 261}));
}

TEST(SentencePieceTokenizerTest, WithoutSpacePrefix) {
  SentencePieceTokenizer::Options options = SmallOptions({{"\u2581", -1}, {"a", -1}});
  options.add_space_prefix = false;
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::Create(std::move(options));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Encode("a a"), (std::vector<int32_t>{260, 259, 260}));
  EXPECT_EQ((*tokenizer)->Decode((*tokenizer)->Encode("a a")), "a a");
}

void ExpectInvalid(SentencePieceTokenizer::Options options, std::string_view message_part) {
  const absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::Create(std::move(options));
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().ToString().find(message_part), std::string_view::npos)
      << tokenizer.status();
}

TEST(SentencePieceTokenizerTest, RejectsInvalidOptions) {
  ExpectInvalid({}, "empty vocabulary");
  SentencePieceTokenizer::Options options = SmallOptions({});
  options.scores.pop_back();
  ExpectInvalid(options, "258 scores for 259 tokens");
  options = SmallOptions({});
  options.token_types.assign(259, 7);
  ExpectInvalid(options, "unknown type 7");
  options = SmallOptions({});
  options.bos_id = 300;
  ExpectInvalid(options, "bos id 300");
  options = SmallOptions({});
  options.token_types.assign(259, 6);
  ExpectInvalid(options, "byte token 0 '<unk>'");
  options = SmallOptions({});
  options.tokens[3 + 0x41] = "A";
  options.unk_id = -1;
  ExpectInvalid(options, "no token for byte 0x41");
}

}  // namespace
}  // namespace kvserve
