// kvserve-cli as a user runs it: output formats, and a one-line reason with a non-zero exit for
// bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "tests/support/cli_run.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

std::string Stories() {
  return "--model " + Stories260KModelPath() + " --tokenizer " + Stories260KTokenizerPath();
}

TEST(CliTest, GenerateJsonCarriesTheContractFields) {
  const CliRun r =
      RunCli("generate " + Stories() + " --prompt-ids 1 --max-tokens 10 --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["token_ids"], (std::vector<int>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298}));
  EXPECT_EQ(j["prompt_tokens"], 1);
  EXPECT_EQ(j["finish_reason"], "max_tokens");
  EXPECT_NE(j["text"].get<std::string>().find("Once upon a time"), std::string::npos);
  for (const char* key : {"prefill_ms", "ttft_ms", "decode_tokens_per_s"}) {
    EXPECT_TRUE(j[key].is_number()) << key;
    EXPECT_GT(j[key].get<double>(), 0.0) << key;
  }
  EXPECT_EQ(j["kv"]["policy"], "full");
  EXPECT_EQ(j["kv"]["kept_tokens"], std::vector<int>(5, 10));
}

TEST(CliTest, GenerateTextStreamsTheStory) {
  const CliRun r =
      RunCli("generate " + Stories() + " --prompt \"Once upon a time\" --max-tokens 20");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_GT(r.out.size(), 20u);
}

// --weights-dtype converts at load: the same story as fp32 up to where bf16 weights tip a near
// tie.
TEST(CliTest, GenerateWithRequantizedWeights) {
  const std::string args =
      "generate " + Stories() + " --prompt-ids 1 --max-tokens 10 --format json";
  const CliRun f32 = RunCli(args + " --weights-dtype f32");
  const CliRun bf16 = RunCli(args + " --weights-dtype bf16");
  ASSERT_EQ(f32.exit_code, 0) << f32.out;
  ASSERT_EQ(bf16.exit_code, 0) << bf16.out;
  const auto a = nlohmann::json::parse(f32.out)["token_ids"].get<std::vector<int>>();
  const auto b = nlohmann::json::parse(bf16.out)["token_ids"].get<std::vector<int>>();
  ASSERT_EQ(b.size(), 10u);
  EXPECT_EQ(a[0], b[0]);  // the first token is far from any tie on this prompt
}

TEST(CliTest, TokenizeMapsSpecialTokenTextToItsId) {
  const std::string model = SmolLm2GgufPath();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF absent";
  const CliRun r = RunCli("tokenize --model " + model + " --text '<|im_start|>user' --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], (std::vector<int>{1, 4093}));
}

TEST(CliTest, LogitsPrintsOneVocabularyRow) {
  const CliRun r = RunCli("logits " + Stories() + " --prompt-ids 1,403 --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["logits"].size(), 512u);
}

TEST(CliTest, BadInputGetsOneLineReasonAndNonZeroExit) {
  const std::pair<std::string, std::string> cases[] = {
      {"generate --model /nonexistent.gguf --prompt hi", "cannot open model file"},
      {"generate " + Stories() + " --prompt-ids 1 --kv-policy nope", "--kv-policy"},
      {"generate " + Stories() + " --prompt-ids 1,999",
       "prompt[1] = 999 is outside the vocabulary"},
      {"generate " + Stories() + " --prompt-ids 1 --max-tokens 600", "context length 512"},
      {"generate " + Stories() + " --prompt-ids 1 --top-p 2", "top_p"},
      {"generate " + Stories() + " --prompt-ids 1 --backend tpu", "unknown backend 'tpu'"},
      {"generate " + Stories() + " --prompt-ids 1 --backend cuda", "backend 'cuda'"},
      {"generate " + Stories() + " --chat --prompt hi", "chat template"},
      {"generate --model " + Stories260KModelPath() + " --prompt hi", "no tokenizer"},
      {"generate --model synthetic:nope --prompt-ids 1", "unknown synthetic model 'nope'"},
      {"generate " + Stories() + " --prompt-ids 1 --weights-dtype q3", "weights dtype 'q3'"},
      {"generate " + Stories() + " --prompt-ids 1 --weights-dtype q8_0",
       "cannot be stored as Q8_0"},
  };
  for (const auto& [args, fragment] : cases) {
    const CliRun r = RunCli(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.out.find("kvserve-cli: error: "), std::string::npos) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(fragment), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace kvserve::testing
