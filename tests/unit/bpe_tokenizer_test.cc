#include "engine/model/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/model/utf8.h"
#include "tests/support/hf_tokenizer_json.h"

namespace kvserve {
namespace {

// GPT-2's byte-to-unicode spelling of raw bytes, written independently of the tokenizer's.
std::string ByteLevel(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const int b = static_cast<uint8_t>(c);
    int cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      cp = 256;
      for (int x = 0; x < b; ++x) {
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++cp;
      }
    }
    AppendUtf8(static_cast<char32_t>(cp), &out);
  }
  return out;
}

// A vocab of the 256 byte tokens (id = byte) plus `extra` tokens, spelled as raw bytes.
BpeTokenizer::Options SmallOptions(const std::vector<std::string>& extra,
                                   const std::vector<std::string>& merges) {
  BpeTokenizer::Options options;
  for (int b = 0; b < 256; ++b) options.tokens.push_back(ByteLevel(std::string(1, char(b))));
  for (const std::string& token : extra) options.tokens.push_back(ByteLevel(token));
  for (const std::string& merge : merges) {
    const size_t space = merge.find(' ', 1);
    options.merges.push_back(ByteLevel(merge.substr(0, space)) + " " +
                             ByteLevel(merge.substr(space + 1)));
  }
  options.pre = "gpt2";
  return options;
}

std::unique_ptr<BpeTokenizer> MustCreate(BpeTokenizer::Options options) {
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer =
      BpeTokenizer::Create(std::move(options));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(BpeTokenizerTest, MergesLowestRankFirstWherever) {
  // "b c" outranks "a b", so "abc" becomes a + bc, then abc.
  auto tokenizer = MustCreate(SmallOptions({"bc", "ab", "abc"}, {"b c", "a b", "a bc"}));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("abc"), (std::vector<int32_t>{258}));
  EXPECT_EQ(tokenizer->Encode("ab"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tokenizer->Encode("abd"), (std::vector<int32_t>{257, 'd'}));
}

TEST(BpeTokenizerTest, EqualRanksMergeLeftmostFirst) {
  auto tokenizer = MustCreate(SmallOptions({"aa"}, {"a a"}));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(tokenizer->Encode("aaaa"), (std::vector<int32_t>{256, 256}));
}

TEST(BpeTokenizerTest, MergesStayInsidePreTokenizedPieces) {
  auto tokenizer = MustCreate(SmallOptions({"a ", " b"}, {"a  ", "  b"}));
  ASSERT_NE(tokenizer, nullptr);
  // GPT-2 splits "a b" into "a", " b": "a " can never form.
  EXPECT_EQ(tokenizer->Encode("a b"), (std::vector<int32_t>{'a', 257}));
}

TEST(BpeTokenizerTest, SpecialAndAddedTokensMatchLiterallyLongestFirst) {
  BpeTokenizer::Options options = SmallOptions({}, {});
  options.tokens.insert(options.tokens.end(), {"<a>", "<a><b>", "new york"});
  options.token_types.assign(256, 1);
  options.token_types.insert(options.token_types.end(), {3, 3, 4});
  auto tokenizer = MustCreate(std::move(options));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("x<a><b>y<a>new york"),
            (std::vector<int32_t>{'x', 257, 'y', 256, 258}));
  EXPECT_TRUE(tokenizer->IsSpecial(256));
  EXPECT_FALSE(tokenizer->IsSpecial(258));  // added words are not control tokens
  EXPECT_FALSE(tokenizer->IsSpecial('x'));
  EXPECT_EQ(tokenizer->TokenBytes(257), "<a><b>");
  EXPECT_EQ(tokenizer->TokenBytes(258), "new york");
}

TEST(BpeTokenizerTest, TokenBytesUndoesTheByteLevelSpelling) {
  auto tokenizer = MustCreate(SmallOptions({" the", "\n\n"}, {}));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->TokenBytes(' '), " ");
  EXPECT_EQ(tokenizer->TokenBytes(0xE6), "\xE6");
  EXPECT_EQ(tokenizer->TokenBytes(256), " the");
  EXPECT_EQ(tokenizer->TokenBytes(257), "\n\n");
  EXPECT_EQ(tokenizer->TokenBytes(-1), "");
  EXPECT_EQ(tokenizer->TokenBytes(258), "");
}

TEST(BpeTokenizerTest, DropsBytesTheVocabLacks) {
  BpeTokenizer::Options options = SmallOptions({}, {});
  options.tokens[0xE6] = "xyz";
  auto tokenizer = MustCreate(std::move(options));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("a\xE6\xE6"
                              "b"),
            (std::vector<int32_t>{'a', 'b'}));
}

void ExpectInvalid(BpeTokenizer::Options options, std::string_view message_part) {
  const absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer =
      BpeTokenizer::Create(std::move(options));
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().ToString().find(message_part), std::string_view::npos)
      << tokenizer.status();
}

TEST(BpeTokenizerTest, RejectsInvalidOptions) {
  ExpectInvalid({}, "empty vocabulary");
  BpeTokenizer::Options options = SmallOptions({}, {});
  options.token_types = {1, 1};
  ExpectInvalid(options, "2 token types for 256 tokens");
  options = SmallOptions({}, {});
  options.token_types.assign(256, 9);
  ExpectInvalid(options, "unknown type 9");
  options = SmallOptions({}, {});
  options.eos_id = 256;
  ExpectInvalid(options, "eos id 256");
  options = SmallOptions({}, {});
  options.merges = {"ab"};
  ExpectInvalid(options, "merge 0 'ab' is not 'LEFT RIGHT'");
  options = SmallOptions({}, {"a b"});  // "ab" is not a token
  ExpectInvalid(options, "merge 0 'a b' names a token not in the vocabulary");
  options = SmallOptions({}, {});
  options.pre = "klingon";
  ExpectInvalid(options, "klingon");
}

// SmolLM2-135M-Instruct's tokenizer, from the same tokenizer.json its GGUF was converted from.
const BpeTokenizer* SmolLm2() {
  static const std::unique_ptr<BpeTokenizer> tokenizer = []() -> std::unique_ptr<BpeTokenizer> {
    const std::string path = testing::SmolLm2TokenizerJsonPath();
    if (path.empty()) return nullptr;
    absl::StatusOr<BpeTokenizer::Options> options =
        testing::BpeOptionsFromHfTokenizerJson(path, "smollm", /*bos_id=*/1, /*eos_id=*/2);
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return nullptr;
    return MustCreate(std::move(*options));
  }();
  return tokenizer.get();
}

class BpeTokenizerSmolLm2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::SmolLm2TokenizerJsonPath().empty()) {
      GTEST_SKIP() << "SmolLM2 tokenizer.json not found";
    }
    ASSERT_NE(SmolLm2(), nullptr);
  }
  const BpeTokenizer& tokenizer() const { return *SmolLm2(); }
};

TEST_F(BpeTokenizerSmolLm2Test, MatchesHuggingFaceIds) {
  // tokenizers 0.23: Tokenizer.from_file(tokenizer().json).encode(text, add_special_tokens=False).
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"Hello world!", {19556, 905, 17}},
      {"12345 apples", {33, 34, 35, 36, 37, 13855}},
      {"The year 2024 had 366 days.",
       {504, 713, 216, 34, 32, 34, 36, 761, 216, 35, 38, 38, 2009, 30}},
      {"  leading spaces, trailing spaces   ", {216, 2899, 5600, 28, 35079, 5600, 333}},
      {"tabs\tand\nnewlines\n\n\nend", {100, 7366, 197, 397, 198, 2241, 5110, 1116, 198, 486}},
      {"Café crème brûlée à la française, où êtes-vous ?",
       {51,  1939,  2756,  1650, 11180, 1558,  1156, 41307, 92,   20174, 25782, 2618,
        275, 45720, 33815, 28,   263,   45586, 5549, 120,   3986, 29,    26424, 9148}},
      {"我爱自然语言处理。",
       {19805, 235, 178, 226, 126, 44974, 120, 178, 222, 131, 16313, 251, 48001, 218, 18614, 222,
        45201, 19076}},
      {"Emoji: 😀👍🏽 family 👨‍👩‍👧‍👦!",
       {10809, 33777, 42,  40303, 218, 10813, 235,   231, 10813, 233, 138,
        1564,  15107, 235, 118,   321, 231,   10813, 235, 119,   321, 231,
        10813, 235,   117, 321,   231, 10813, 235,   116, 17}},
      {"I'm sure you've heard they'll say it's done, didn't we?",
       {57, 5248, 2090, 346, 3543, 3984, 502, 3060, 1643, 357, 506, 2294, 28, 3683, 982, 392, 47}},
      {"<|im_start|>user\nWhat is the capital of France?<|im_end|>\n",
       {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198}},
      {"x = a_b + 3.14159 * (y - 2);", {104, 446, 253, 79,   82,  1232, 216, 35,  30, 33,  36,
                                        33,  37,  41,  1672, 365, 105,  731, 216, 34, 4258}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(tokenizer().Encode(text), ids) << text;
}

TEST_F(BpeTokenizerSmolLm2Test, DecodeInvertsEncode) {
  for (const std::string text :
       {"", "a", "Hello, world! How are you?", "Ça va ? Très bien, merci. Ærøskøbing, naïve façade",
        "日本語のテキストと中文文本", "👨‍👩‍👧‍👦 🏳️‍🌈 👍🏿 ❤️",
        "   ", "\t\t tabs \t", "\n\n\n", "line\r\nbreaks\r\n", "trailing spaces   ", "  leading",
        "0123456789 3.14 1e-9 ١٢٣", "can't won't shouldn't I'd we'll they're",
        "<|im_end|><|im_start|>", "<|im_start", "mixed: αβγ АБВ אבג 한국어 🎉 end"}) {
    EXPECT_EQ(tokenizer().Decode(tokenizer().Encode(text)), text) << text;
  }
}

TEST_F(BpeTokenizerSmolLm2Test, IllFormedUtf8KeepsTheBytesTheVocabHas) {
  // The vocab has no token for 0xFF: it is dropped, as Hugging Face does.
  const std::string text = "ok \xFF\xC3(\xE2\x82 end\xF0\x9F";
  const std::string kept = "ok \xC3(\xE2\x82 end\xF0\x9F";
  const std::vector<int32_t> ids = tokenizer().Encode(text);
  std::string bytes;
  for (const int32_t id : ids) bytes += tokenizer().TokenBytes(id);
  EXPECT_EQ(bytes, kept);
  EXPECT_EQ(tokenizer().Decode(ids), SanitizeUtf8(kept));
}

TEST_F(BpeTokenizerSmolLm2Test, SpecialTokens) {
  EXPECT_EQ(tokenizer().vocab_size(), 49152);
  EXPECT_EQ(tokenizer().bos_id(), 1);
  EXPECT_EQ(tokenizer().eos_id(), 2);
  EXPECT_FALSE(tokenizer().add_bos());
  for (int32_t id = 0; id <= 16; ++id) EXPECT_TRUE(tokenizer().IsSpecial(id)) << id;
  EXPECT_FALSE(tokenizer().IsSpecial(17));
  EXPECT_EQ(tokenizer().TokenBytes(1), "<|im_start|>");
  EXPECT_EQ(tokenizer().TokenBytes(2), "<|im_end|>");
  EXPECT_EQ(tokenizer().TokenBytes(905), " world");
}

TEST_F(BpeTokenizerSmolLm2Test, LongPromptRoundTrips) {
  std::string text;
  for (int i = 0; text.size() < 40000; ++i) {
    text += "Paragraph " + std::to_string(i) +
            ": The quick brown fox jumps over the lazy dog; café, 日本, 😀.\n\n";
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer().Encode(text);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("encoded %zu bytes into %zu tokens in %.2f ms\n", text.size(), ids.size(), ms);
  EXPECT_GT(ids.size(), 8000u);
  EXPECT_EQ(tokenizer().Decode(ids), text);
}

}  // namespace
}  // namespace kvserve
