// The accuracy evaluation's prompts and scores (tools/eval).
#include <gtest/gtest.h>

#include "tests/support/model_fixtures.h"
#include "tools/eval/agreement_task.h"
#include "tools/eval/eval_config.h"
#include "tools/eval/passkey_task.h"
#include "tools/eval/report.h"

namespace kvserve::eval {
namespace {

TEST(AccuracyEvalTest, ParsesConfigLabels) {
  auto full = ParseEvalConfig("full");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(KvPolicyName(full->options), "full");
  auto snap = ParseEvalConfig("snapkv");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(std::get<SnapKvOptions>(snap->options).budget, 0);
  EXPECT_FLOAT_EQ(std::get<SnapKvOptions>(snap->options).retain_rate, 0.1f);
  auto fast = ParseEvalConfig("fastkv-256");
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(KvPolicyName(fast->options), "fastkv");
  EXPECT_EQ(std::get<FastKvOptions>(fast->options).budget, 256);
  EXPECT_FLOAT_EQ(std::get<FastKvOptions>(fast->options).tsp_rate, 0.2f);
  // Tiered budgets keep the default's proportions: a quarter sink, a quarter recent.
  auto free = ParseEvalConfig("freekv-256");
  ASSERT_TRUE(free.ok());
  EXPECT_EQ(std::get<FreeKvOptions>(free->options).budget, 256);
  EXPECT_EQ(std::get<FreeKvOptions>(free->options).sink, 64);
  EXPECT_EQ(std::get<FreeKvOptions>(free->options).recent, 64);
  auto paged = ParseEvalConfig("freekv-128p8");
  ASSERT_TRUE(paged.ok());
  EXPECT_EQ(std::get<FreeKvOptions>(paged->options).page_size, 8);
  EXPECT_EQ(std::get<FreeKvOptions>(paged->options).budget, 128);
  EXPECT_EQ(std::get<FreeKvOptions>(paged->options).sink, 32);
  EXPECT_FALSE(ParseEvalConfig("fastkv-128p8").ok()) << "pages are the tiered policies' own";
  EXPECT_FALSE(ParseEvalConfig("freekv-128p").ok());
  auto corrected = ParseEvalConfig("fastkv_freekv-512p16t1");
  ASSERT_TRUE(corrected.ok());
  EXPECT_EQ(std::get<FastKvFreeKvOptions>(corrected->options).page_size, 16);
  EXPECT_FLOAT_EQ(std::get<FastKvFreeKvOptions>(corrected->options).tau, 1.0f);
  EXPECT_EQ(std::get<FastKvFreeKvOptions>(corrected->options).budget, 512);
  EXPECT_FALSE(ParseEvalConfig("freekv-128tx").ok());
  // FreeKV's long-input split: sink = recent = 128, the rest retrieved.
  auto long_input = ParseEvalConfig("quest-1024s128");
  ASSERT_TRUE(long_input.ok());
  EXPECT_EQ(TieredOptionsOf(long_input->options)->budget, 1024);
  EXPECT_EQ(TieredOptionsOf(long_input->options)->sink, 128);
  EXPECT_EQ(TieredOptionsOf(long_input->options)->recent, 128);
  auto ratio = ParseEvalConfig("freekv-r0.25s128p16");
  ASSERT_TRUE(ratio.ok());
  const auto at4k = ForPrompt(*ratio, 4096);
  ASSERT_TRUE(at4k.has_value());
  EXPECT_EQ(TieredOptionsOf(*at4k)->budget, 1024);
  EXPECT_EQ(TieredOptionsOf(*at4k)->sink, 128);
  EXPECT_EQ(TieredOptionsOf(*at4k)->page_size, 16);
  EXPECT_FALSE(ParseEvalConfig("freekv-512s").ok());
  // A sink of its own (one page here), the recent window a quarter of the budget as before.
  auto small_sink = ParseEvalConfig("freekv-r0.25k16p16+minmax");
  ASSERT_TRUE(small_sink.ok()) << small_sink.status();
  const auto sink_at4k = ForPrompt(*small_sink, 4096);
  ASSERT_TRUE(sink_at4k.has_value());
  EXPECT_EQ(TieredOptionsOf(*sink_at4k)->sink, 16);
  EXPECT_EQ(TieredOptionsOf(*sink_at4k)->recent, 256);
  EXPECT_EQ(small_sink->experiment, "minmax");
  EXPECT_FALSE(ParseEvalConfig("freekv-512k").ok());
  EXPECT_FALSE(ParseEvalConfig("snapkv-512k32").ok());
  auto variant = ParseEvalConfig("quest-r0.25d2+mean+mad");
  ASSERT_TRUE(variant.ok());
  EXPECT_EQ(variant->experiment, "dense2+mean+mad");
  EXPECT_FLOAT_EQ(variant->ratio, 0.25f);
  EXPECT_FALSE(ParseEvalConfig("freekv-512+median").ok());
  EXPECT_FALSE(ParseEvalConfig("snapkv-512s128").ok()) << "sink and recent are the tiered ones'";
  auto small = ParseEvalConfig("fastkv_freekv-64");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(std::get<FastKvFreeKvOptions>(small->options).sink, 32);  // at least a page
  for (const char* bad : {"nope", "full-128", "snapkv-", "fastkv-0", "fastkv-x", "freekv-"}) {
    EXPECT_FALSE(ParseEvalConfig(bad).ok()) << bad;
  }
  EXPECT_EQ(DefaultConfigLabels().size(), 9u);
  for (const std::string& label : TieredConfigLabels()) {
    EXPECT_TRUE(ParseEvalConfig(label).ok()) << label;
  }
}

TEST(AccuracyEvalTest, PasskeyPromptFitsItsLengthAndHidesTheKeyAtItsDepth) {
  testing::CpuModel m = testing::LoadStories260K();
  ASSERT_NE(m.tokenizer, nullptr);
  size_t previous_at = 0;
  for (int depth : {0, 50, 100}) {
    const PasskeySpec spec{.target_tokens = 400, .depth_percent = depth, .seed = 1};
    auto p = BuildPasskeyPrompt(*m.tokenizer, "", spec);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_LE(p->ids.size(), 400u);
    EXPECT_GT(p->ids.size(), 300u);
    EXPECT_EQ(p->key.size(), 5u);
    EXPECT_EQ(p->key, PasskeyFor(spec));
    EXPECT_EQ(p->ids.front(), m.tokenizer->bos_id());
    const std::string text = m.tokenizer->Decode(p->ids);
    const size_t at = text.find(absl::StrCat("The pass key is ", p->key, "."));
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(at, previous_at);  // deeper keys sit later
    previous_at = at;
    EXPECT_TRUE(text.ends_with("What is the pass key? The pass key is")) << text.substr(at);
  }
  // Another seed, another key; the chat format needs a template.
  EXPECT_NE(PasskeyFor({.seed = 1}), PasskeyFor({.seed = 2}));
  EXPECT_FALSE(
      BuildPasskeyPrompt(*m.tokenizer, "", {.target_tokens = 400, .format = PromptFormat::kChat})
          .ok());
  EXPECT_FALSE(BuildPasskeyPrompt(*m.tokenizer, "", {.target_tokens = 20}).ok());
}

TEST(AccuracyEvalTest, PasskeyCorrectNeedsTheFiveDigitsInARow) {
  EXPECT_TRUE(PasskeyCorrect(" 27611.\n\nThe", "27611"));
  EXPECT_TRUE(PasskeyCorrect("The pass key is 27611", "27611"));
  EXPECT_FALSE(PasskeyCorrect(" 2761", "27611"));
  EXPECT_FALSE(PasskeyCorrect(" 27 611", "27611"));
}

TEST(AccuracyEvalTest, AgreementComparesPositionsAndEndedSequences) {
  const std::vector<int32_t> ref = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(TokenAgreement(ref, ref, 4), 1.0);
  EXPECT_DOUBLE_EQ(TokenAgreement(ref, std::vector<int32_t>{1, 9, 3, 4}, 4), 0.75);
  // Both ended after 4 of 8: the four ended positions agree.
  EXPECT_DOUBLE_EQ(TokenAgreement(ref, ref, 8), 1.0);
  // One ended early: its missing positions disagree.
  EXPECT_DOUBLE_EQ(TokenAgreement(ref, std::vector<int32_t>{1, 2}, 4), 0.5);
  EXPECT_DOUBLE_EQ(TokenAgreement(std::vector<int32_t>{1, 2}, ref, 4), 0.5);
}

TEST(AccuracyEvalTest, AgreementPromptKeepsWholeLinesWithinItsBudget) {
  testing::CpuModel m = testing::LoadSmolLm2();
  if (m.tokenizer == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
  std::string doc;
  for (int i = 0; i < 200; ++i) doc += absl::StrCat("Line ", i, " of a plain document.\n");
  auto p = BuildAgreementPrompt(*m.tokenizer, m.chat_template, doc, 300);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_LE(p->ids.size(), 300u);
  EXPECT_GT(p->ids.size(), 250u);
  const std::string text = m.tokenizer->Decode(p->ids);
  EXPECT_NE(text.find(absl::StrCat("Line ", p->document_lines - 1, " of")), std::string::npos);
  EXPECT_EQ(text.find(absl::StrCat("Line ", p->document_lines, " of")), std::string::npos);
  EXPECT_TRUE(text.ends_with("<|im_start|>assistant\n")) << text;
  EXPECT_FALSE(BuildAgreementPrompt(*m.tokenizer, m.chat_template, doc, 10).ok());

  auto source = ParseAgreementSource("/usr/share/common-licenses/GPL-3:4000");
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(source->path, "/usr/share/common-licenses/GPL-3");
  EXPECT_EQ(source->target_tokens, 4000);
  EXPECT_FALSE(ParseAgreementSource("GPL-3").ok());
}

TEST(AccuracyEvalTest, ReportNamesEveryScoredConfigAndJudgesTheTargets) {
  using nlohmann::json;
  std::vector<json> records = {
      {{"type", "run"}, {"configs", {"full", "tiered"}}, {"command", "eval"}}};
  // Two lengths, one case each: at 1K full is right and so are the others but fastkv_freekv-128;
  // at 2K only fastkv_freekv-128 is right (full < 80 %: the full-based targets do not apply).
  for (const auto& [length, right] : std::vector<std::pair<int, std::vector<std::string>>>{
           {1024, {"full", "freekv", "fastkv-128"}}, {2048, {"fastkv_freekv-128"}}}) {
    json results;
    for (const char* c : {"full", "freekv", "fastkv-128", "fastkv_freekv-128"}) {
      const bool ok = std::find(right.begin(), right.end(), c) != right.end();
      results[c] = {{"correct", ok}, {"kv_tokens_mean", 100.0}};
    }
    records.push_back({{"type", "passkey"},
                       {"target_tokens", length},
                       {"prompt_tokens", length - 20},
                       {"depth", 50},
                       {"seed", 0},
                       {"prefill_ms", {{"full", 10.0}}},
                       {"results", results}});
  }
  const std::string md = RenderMarkdown(records);
  EXPECT_EQ(md.find("`tiered`"), std::string::npos) << "a group name is not a configuration";
  EXPECT_NE(md.find("| `fastkv_freekv-128` |"), std::string::npos) << md;
  EXPECT_NE(md.find("- 1K: `full` 100.0 %, `freekv` 100.0 % (+0.0) — met"), std::string::npos)
      << md;
  EXPECT_NE(md.find("- 2K: `full` 0.0 %, `freekv` 0.0 % (+0.0) — not applicable"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("- 1K: `fastkv-128` 100.0 %, `fastkv_freekv-128` 0.0 % (-100.0) — **not met**"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("Target (issue #4)"), std::string::npos) << "no plain fastkv was scored";
}

}  // namespace
}  // namespace kvserve::eval
