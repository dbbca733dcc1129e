// Issue 17's evaluation pieces (tools/eval): generated tasks, budgets resolved per prompt, Wilson
// intervals, fidelity arithmetic.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/model/bpe_tokenizer.h"
#include "engine/model/chat_template.h"
#include "tests/support/hf_tokenizer_json.h"
#include "tools/eval/eval_config.h"
#include "tools/eval/fidelity_task.h"
#include "tools/eval/ruler_tasks.h"
#include "tools/eval/suite_report.h"
#include "tools/eval/task_text.h"

namespace kvserve::eval {
namespace {

// SmolLM2's ChatML, as its GGUF's template renders it (the markers are what ChatTemplate reads).
constexpr char kChatMl[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

const Tokenizer* SmolLm2Tokenizer() {
  static const std::unique_ptr<BpeTokenizer> tokenizer = []() -> std::unique_ptr<BpeTokenizer> {
    const std::string path = testing::SmolLm2TokenizerJsonPath();
    if (path.empty()) return nullptr;
    auto options = testing::BpeOptionsFromHfTokenizerJson(path, "smollm", 1, 2);
    if (!options.ok()) return nullptr;
    auto t = BpeTokenizer::Create(*std::move(options));
    return t.ok() ? *std::move(t) : nullptr;
  }();
  return tokenizer.get();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(AccuracySuiteTest, TasksAreDeterministicFitTheirLengthAndHoldTheirAnswers) {
  const Tokenizer* tok = SmolLm2Tokenizer();
  if (tok == nullptr) GTEST_SKIP() << "SmolLM2 tokenizer.json absent";
  ASSERT_EQ(ChatTemplate(kChatMl).style(), ChatTemplate::Style::kChatMl);
  for (const std::string& task : RulerTaskNames()) {
    for (int index : {0, 1, 5}) {
      const TaskSpec spec{.task = task, .target_tokens = 1024, .index = index};
      auto a = BuildTaskPrompt(*tok, kChatMl, spec);
      ASSERT_TRUE(a.ok()) << task << ": " << a.status();
      auto b = BuildTaskPrompt(*tok, kChatMl, spec);
      ASSERT_TRUE(b.ok());
      EXPECT_EQ(a->ids, b->ids) << task << " is not deterministic";
      EXPECT_LE(static_cast<int>(a->ids.size()) + a->answer_tokens, 1024) << task;
      EXPECT_GE(static_cast<int>(a->ids.size()) + a->answer_tokens, 900) << task << " too short";
      ASSERT_FALSE(a->references.empty());
      const std::string text = tok->Decode(a->ids);
      for (const std::string& r : a->references) {
        EXPECT_NE(text.find(r), std::string::npos) << task << " lacks its answer " << r;
        // Graded answers must not be guessable from the question or the answer prefix.
        if (task != "cwe" && task != "vt") {  // repeated by design: counts, chain links
          EXPECT_EQ(Count(text, r), 1u) << task << ": '" << r << "' stated more than once";
        }
      }
      EXPECT_EQ(ReferenceScore(text, a->references), 1.0);
    }
    auto other = BuildTaskPrompt(*tok, kChatMl, {.task = task, .target_tokens = 1024, .index = 2});
    auto first = BuildTaskPrompt(*tok, kChatMl, {.task = task, .target_tokens = 1024, .index = 0});
    ASSERT_TRUE(other.ok() && first.ok());
    EXPECT_NE(other->references, first->references) << task << ": cases should differ";
  }
  EXPECT_FALSE(BuildTaskPrompt(*tok, kChatMl, {.task = "nope"}).ok());
  EXPECT_FALSE(BuildTaskPrompt(*tok, kChatMl, {.task = "qa", .target_tokens = 40}).ok());
}

TEST(AccuracySuiteTest, FillerHoldsNoDigitsHyphensOrNeedleWords) {
  for (FillerKind kind : {FillerKind::kEssay, FillerKind::kTechnical, FillerKind::kCode}) {
    for (const std::string& unit : FillerUnits(kind, 7, 300)) {
      EXPECT_EQ(unit.find_first_of("0123456789-"), std::string::npos) << unit;
      for (const char* word : {"pass key", "special", "magic", "VAR "}) {
        EXPECT_EQ(unit.find(word), std::string::npos) << unit;
      }
    }
  }
  EXPECT_EQ(FillerUnits(FillerKind::kEssay, 3, 20), FillerUnits(FillerKind::kEssay, 3, 20));
  EXPECT_NE(FillerUnits(FillerKind::kEssay, 3, 20), FillerUnits(FillerKind::kEssay, 4, 20));
}

TEST(AccuracySuiteTest, ScoresReferencesCaseInsensitivelyWithPartialCredit) {
  EXPECT_EQ(ReferenceScore("The key is 12345.", {"12345"}), 1.0);
  EXPECT_EQ(ReferenceScore("The key is 1234 5.", {"12345"}), 0.0);
  EXPECT_EQ(ReferenceScore("mara lindqvist", {"Mara Lindqvist"}), 1.0);
  EXPECT_DOUBLE_EQ(ReferenceScore("ABCDE and FGHIJ", {"ABCDE", "FGHIJ", "KLMNO", "PQRST"}), 0.5);
  EXPECT_EQ(ReferenceScore("anything", {}), 0.0);
}

TEST(AccuracySuiteTest, WilsonIntervalMatchesTheFormula) {
  // Reference values (Wilson 1927, z = 1.96): 0/10 → [0, 0.2775]; 5/10 → [0.2366, 0.7634];
  // 10/10 → [0.7225, 1]; 381 cases at p = 0.5 → half-width 0.05 (research/ruler.md §6.5).
  auto [lo, hi] = WilsonInterval(0, 10);
  EXPECT_NEAR(lo, 0.0, 1e-9);
  EXPECT_NEAR(hi, 0.2775, 1e-4);
  std::tie(lo, hi) = WilsonInterval(5, 10);
  EXPECT_NEAR(lo, 0.2366, 1e-4);
  EXPECT_NEAR(hi, 0.7634, 1e-4);
  std::tie(lo, hi) = WilsonInterval(10, 10);
  EXPECT_NEAR(lo, 0.7225, 1e-4);
  EXPECT_NEAR(hi, 1.0, 1e-9);
  std::tie(lo, hi) = WilsonInterval(190, 381);
  EXPECT_NEAR((hi - lo) / 2, 0.05, 1e-3);
  std::tie(lo, hi) = WilsonInterval(0, 0);
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(hi, 1.0);
}

TEST(AccuracySuiteTest, BudgetsResolvePerPromptAndTieredOnesStayBelowIt) {
  auto quarter = ParseEvalConfig("freekv-r0.25");
  ASSERT_TRUE(quarter.ok());
  auto o = ForPrompt(*quarter, 4096);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(std::get<FreeKvOptions>(*o).budget, 1024);
  EXPECT_EQ(std::get<FreeKvOptions>(*o).sink, 256);
  EXPECT_EQ(std::get<FreeKvOptions>(*o).recent, 256);
  o = ForPrompt(*quarter, 1000);  // ⌊250 / 32⌋ pages = 224, at least 4 pages
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(std::get<FreeKvOptions>(*o).budget, 224);
  // A constant budget that holds the prompt decodes densely: not evaluated.
  auto constant = ParseEvalConfig("freekv-2048");
  ASSERT_TRUE(constant.ok());
  EXPECT_FALSE(ForPrompt(*constant, 2048).has_value());
  EXPECT_TRUE(ForPrompt(*constant, 2049).has_value());
  auto defaults = ParseEvalConfig("quest");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(ForPrompt(*defaults, 1500).has_value());
  // snapkv/fastkv ratios are their ρ; fastkv's τ rises to ρ where needed.
  auto fast = ParseEvalConfig("fastkv-r0.25");
  ASSERT_TRUE(fast.ok());
  EXPECT_FLOAT_EQ(std::get<FastKvOptions>(fast->options).retain_rate, 0.25f);
  EXPECT_FLOAT_EQ(std::get<FastKvOptions>(fast->options).tsp_rate, 0.25f);
  EXPECT_EQ(std::get<FastKvOptions>(*ForPrompt(*fast, 100)).budget, 0);
  // tT names fastkv's τ, which then stays as named.
  auto named_tsp = ParseEvalConfig("fastkv-r0.25t0.5w16");
  ASSERT_TRUE(named_tsp.ok());
  EXPECT_FLOAT_EQ(std::get<FastKvOptions>(named_tsp->options).retain_rate, 0.25f);
  EXPECT_FLOAT_EQ(std::get<FastKvOptions>(named_tsp->options).tsp_rate, 0.5f);
  EXPECT_EQ(std::get<FastKvOptions>(named_tsp->options).window, 16);
  auto window = ParseEvalConfig("snapkv-r0.1w32avg");
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(std::get<SnapKvOptions>(window->options).window, 32);
  EXPECT_EQ(std::get<SnapKvOptions>(window->options).pool, ScorePooling::kAvg);
  for (const char* bad : {"freekv-r0", "freekv-r1.5", "snapkv-", "snapkv-w", "fastkv-rx",
                          "snapkv-gmax", "snapkv-r0.1t0.5", "fastkv-r0.25tx"}) {
    EXPECT_FALSE(ParseEvalConfig(bad).ok()) << bad;
  }
  for (const std::string& label : SuiteConfigLabels()) {
    EXPECT_TRUE(ParseEvalConfig(label).ok()) << label;
  }
}

TEST(AccuracySuiteTest, KlDivergenceAndAgreementArithmetic) {
  const std::vector<float> a = {1.0f, 2.0f, 3.0f};
  const std::vector<double> logp = LogSoftmax(a);
  double total = 0;
  for (double v : logp) total += std::exp(v);
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_NEAR(KlDivergence(logp, a), 0.0, 1e-12);
  // Shifting every logit changes nothing; moving one does.
  EXPECT_NEAR(KlDivergence(logp, std::vector<float>{11.0f, 12.0f, 13.0f}), 0.0, 1e-9);
  const double kl = KlDivergence(logp, std::vector<float>{3.0f, 2.0f, 1.0f});
  EXPECT_GT(kl, 0.5);
  EXPECT_EQ(ArgMax(a), 2);
  EXPECT_EQ(CommonPrefix(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{1, 2, 4}), 2);
  EXPECT_EQ(CommonPrefix(std::vector<int32_t>{1, 2}, std::vector<int32_t>{1, 2, 4}), 2);
}

}  // namespace
}  // namespace kvserve::eval
