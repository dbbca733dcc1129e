#include "engine/model/bpe_pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace kvserve {
namespace {

struct Case {
  std::string text;
  std::vector<std::string> pieces;
};

std::vector<std::string> Split(BpePreTokenizer kind, const std::string& text) {
  std::vector<std::string> pieces;
  for (const std::string_view piece : PreTokenize(kind, text)) pieces.emplace_back(piece);
  return pieces;
}

void ExpectSplits(BpePreTokenizer kind, const std::vector<Case>& cases) {
  for (const Case& c : cases) EXPECT_EQ(Split(kind, c.text), c.pieces) << c.text;
}

// Expected pieces from the Hugging Face `tokenizers` package (0.23): ByteLevel(use_regex) for
// GPT-2, Sequence[Digits(individual_digits), ByteLevel] for SmolLM, Split(llama3 regex, isolated).
TEST(BpePreTokenizerTest, Gpt2MatchesHuggingFace) {
  ExpectSplits(
      BpePreTokenizer::kGpt2,
      {
          {"Hello world! It's   a test.\n\n  x",
           {"Hello", " world", "!", " It", "'s", "  ", " a", " test", ".", "\n\n ", " x"}},
          {"I'M DON'T we'Re 'll", {"I", "'", "M", " DON", "'", "T", " we", "'", "Re", " '", "ll"}},
          {"abc 12345 x  678", {"abc", " 12345", " x", " ", " 678"}},
          {"\t\tfoo  \r\n\r\n bar\n", {"\t", "\t", "foo", "  \r\n\r\n", " bar", "\n"}},
          {"...abc $100.50!!\n\n", {"...", "abc", " $", "100", ".", "50", "!!", "\n\n"}},
          {"日本語 テキスト،١٢٣ ²³½", {"日本語", " テキスト", "،", "١٢٣", " ²³½"}},
          {"  trailing  ", {" ", " trailing", "  "}},
      });
}

TEST(BpePreTokenizerTest, DigitsThenGpt2MatchesHuggingFace) {
  ExpectSplits(
      BpePreTokenizer::kDigitsGpt2,
      {
          {"Hello world! It's   a test.\n\n  x",
           {"Hello", " world", "!", " It", "'s", "  ", " a", " test", ".", "\n\n ", " x"}},
          {"abc 12345 x  678", {"abc", " ", "1", "2", "3", "4", "5", " x", "  ", "6", "7", "8"}},
          {"...abc $100.50!!\n\n",
           {"...", "abc", " $", "1", "0", "0", ".", "5", "0", "!!", "\n\n"}},
          {"日本語 テキスト،١٢٣ ²³½",
           {"日本語", " テキスト", "،", "١", "٢", "٣", " ", "²", "³", "½"}},
      });
}

TEST(BpePreTokenizerTest, Llama3MatchesHuggingFace) {
  ExpectSplits(BpePreTokenizer::kLlama3,
               {
                   {"Hello world! It's   a test.\n\n  x",
                    {"Hello", " world", "!", " It", "'s", "  ", " a", " test", ".\n\n", " ", " x"}},
                   {"I'M DON'T we'Re 'll", {"I", "'M", " DON", "'T", " we", "'Re", " '", "ll"}},
                   {"abc 12345 x  678", {"abc", " ", "123", "45", " x", " ", " ", "678"}},
                   {"\t\tfoo  \r\n\r\n bar\n", {"\t", "\tfoo", "  \r\n\r\n", " bar", "\n"}},
                   {"...abc $100.50!!\n\n", {"...", "abc", " $", "100", ".", "50", "!!\n\n"}},
                   {"日本語 テキスト،١٢٣ ²³½", {"日本語", " テキスト", "،", "١٢٣", " ", "²³½"}},
                   {"  trailing  ", {" ", " trailing", "  "}},
                   {"x'ſa", {"x", "'ſ", "a"}},  // (?i) folds long s to s
               });
}

TEST(BpePreTokenizerTest, EmptyTextHasNoPieces) {
  for (const auto kind :
       {BpePreTokenizer::kGpt2, BpePreTokenizer::kDigitsGpt2, BpePreTokenizer::kLlama3}) {
    EXPECT_TRUE(PreTokenize(kind, "").empty());
  }
}

TEST(BpePreTokenizerTest, IllFormedUtf8IsKeptAndGroupedWithPunctuation) {
  const std::string text = "ab\xFF\xFE!cd \xC3";
  for (const auto kind :
       {BpePreTokenizer::kGpt2, BpePreTokenizer::kDigitsGpt2, BpePreTokenizer::kLlama3}) {
    std::string joined;
    for (const std::string_view piece : PreTokenize(kind, text)) joined += piece;
    EXPECT_EQ(joined, text);
  }
  EXPECT_EQ(Split(BpePreTokenizer::kGpt2, text),
            (std::vector<std::string>{"ab", "\xFF\xFE!", "cd", " \xC3"}));
}

TEST(BpePreTokenizerTest, NamesFromGguf) {
  EXPECT_EQ(*BpePreTokenizerFromName("gpt2"), BpePreTokenizer::kGpt2);
  EXPECT_EQ(*BpePreTokenizerFromName(""), BpePreTokenizer::kGpt2);
  EXPECT_EQ(*BpePreTokenizerFromName("smollm"), BpePreTokenizer::kDigitsGpt2);
  EXPECT_EQ(*BpePreTokenizerFromName("llama-bpe"), BpePreTokenizer::kLlama3);
  const absl::StatusOr<BpePreTokenizer> unknown = BpePreTokenizerFromName("qwen2");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().ToString().find("qwen2"), std::string::npos);
}

}  // namespace
}  // namespace kvserve
