// Quest, FreeKV and FastKV+FreeKV end to end on stories260K through the CPU backend's decode
// hooks and the scheduler's host tier: a budget covering the context equals full; FreeKV with
// τ = 1 equals Quest exactly; the recall worker changes nothing; host and device pages return to
// zero however a sequence ends; bad options are refused naming the field.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/tiered_kv_policy.h"
#include "engine/scheduler/batch_generator.h"
#include "engine/scheduler/engine_core.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

// Small pages so a 512-token model has many: 8 slots of 8 tokens (1 sink, 2 recent, 5 retrieved).
KvPolicyOptions Tiered(const std::string& name, int budget = 64, float tau = 0.8f) {
  KvPolicyOptions o = DefaultKvPolicyOptions(*ParseKvPolicyKind(name));
  TieredOptions& t = *TieredOptionsOf(o);
  t.budget = budget;
  t.page_size = 8;
  t.sink = 8;
  t.recent = 16;
  if (name != "quest") {  // quest has no tau
    EXPECT_TRUE(SetKvOption(o, "tau", tau).ok());
  }
  return o;
}

std::vector<int32_t> Prompt(uint32_t seed, int n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, 511);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(d(rng));
  return p;
}

GenerationResult Generate(CpuModel& m, const std::vector<int32_t>& prompt, int max_new,
                          const KvPolicyOptions& kv) {
  BatchGenerator gen(*m.backend, {.page_size = 8});
  const GenerationRequest r{
      .prompt = prompt, .max_new_tokens = max_new, .ignore_eos = true, .kv_policy = kv};
  auto out = gen.Generate(std::span(&r, 1));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->front() : GenerationResult{};
}

TEST(TieredDecodeTest, ABudgetCoveringTheContextEqualsFull) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = Prompt(1, 150);
  const GenerationResult full = Generate(m, prompt, 40, FullOptions{});
  ASSERT_EQ(full.tokens.size(), 40u);
  for (const char* name : {"quest", "freekv"}) {
    const GenerationResult r = Generate(m, prompt, 40, Tiered(name, /*budget=*/256));
    EXPECT_EQ(r.tokens, full.tokens) << name;
    EXPECT_EQ(r.kv.policy, name);
    EXPECT_EQ(r.kv.recalled_pages, 0) << name;
    EXPECT_DOUBLE_EQ(r.kv.resident_fraction, 1.0) << name;
    EXPECT_EQ(r.kv.decode_steps, 39) << name;  // the first token comes from the prefill
  }
}

TEST(TieredDecodeTest, FreeKvWithTauOneEqualsQuestExactly) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = Prompt(2, 300);
  const GenerationResult freekv = Generate(m, prompt, 60, Tiered("freekv", 64, /*tau=*/1.0f));
  // Quest over FreeKV's digests (center ± MAD; its own are min/max), driven straight through the
  // backend with synchronous recall.
  auto created = CreateKvPolicy(Tiered("quest"), m.config);
  ASSERT_TRUE(created.ok()) << created.status();
  auto* tiered = dynamic_cast<TieredKvPolicy*>(created->get());
  ASSERT_NE(tiered, nullptr);
  EXPECT_EQ(tiered->digest(), DigestKind::kMinMax);
  tiered->SetPageScoring(GroupAggregation::kMeanSoftmax, DigestKind::kCenterMad);
  const PolicyRun quest = RunGreedy(*m.backend, prompt, tiered, 60, /*page=*/8);
  EXPECT_EQ(freekv.tokens, quest.tokens);
  // Sparse for real: 64 of ~330 tokens resident, pages recalled as the selection moved.
  EXPECT_LT(quest.stats.resident_fraction, 0.3);
  EXPECT_GT(quest.stats.recalled_pages, 0);
  EXPECT_EQ(quest.stats.corrections, 0);
  // τ = 1 corrects every head of every layer at every step after the first sparse one.
  EXPECT_GT(freekv.kv.corrections, 0);
  EXPECT_DOUBLE_EQ(freekv.kv.correction_rate, 1.0);
  EXPECT_DOUBLE_EQ(freekv.kv.step_correction_rate, 1.0);
  EXPECT_EQ(freekv.kv.host_tokens, quest.stats.host_tokens);
}

TEST(TieredDecodeTest, TheRecallWorkerGivesTheTokensOfInlineRecall) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> prompt = Prompt(3, 300);
  // The scheduler's FreeKV recalls on its worker thread, speculatively, overlapping the layers.
  const GenerationResult threaded = Generate(m, prompt, 60, Tiered("freekv", 64, 0.9f));
  // The same policy with synchronous recall, run straight through the backend.
  auto inline_policy = CreateKvPolicy(Tiered("freekv", 64, 0.9f), m.config);
  ASSERT_TRUE(inline_policy.ok()) << inline_policy.status();
  ASSERT_EQ(m.backend->name(), "cpu");
  const PolicyRun direct = RunGreedy(*m.backend, prompt, inline_policy->get(), 60, /*page=*/8);
  EXPECT_EQ(threaded.tokens, direct.tokens);
  EXPECT_EQ(threaded.kv.recalled_pages, direct.stats.recalled_pages);
  EXPECT_EQ(threaded.kv.corrections, direct.stats.corrections);
  // τ = 0.9 sits between never and always: some heads drift, most do not.
  EXPECT_GT(threaded.kv.correction_rate, 0.0);
  EXPECT_LT(threaded.kv.correction_rate, 1.0);
}

TEST(TieredDecodeTest, FastKvFreeKvKeepsEveryRowThePrefillProduced) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int n = 300, new_tokens = 20;
  KvPolicyOptions kv = Tiered("fastkv_freekv");
  const GenerationResult r = Generate(m, Prompt(4, n), new_tokens, kv);
  ASSERT_EQ(r.tokens.size(), static_cast<size_t>(new_tokens));
  const int tsp_layer = m.config.n_layers / 2 - 1;
  const int t = static_cast<int>(n * 0.2f);
  EXPECT_EQ(r.kv.tsp_tokens, t);
  ASSERT_EQ(r.kv.kept_tokens.size(), static_cast<size_t>(m.config.n_layers));
  // Up to TSP every prompt row, after it the T propagated ones: nothing dropped (fastkv would
  // keep ρN per layer), plus the decoded tokens.
  for (int l = 0; l < m.config.n_layers; ++l) {
    EXPECT_EQ(r.kv.kept_tokens[l], (l <= tsp_layer ? n : t) + new_tokens - 1) << "layer " << l;
  }
  EXPECT_LT(r.kv.prefill_flops_fraction, 1.0);
}

// Runs until the callback has seen `tokens` tokens of request "r", then checks the tiers.
TEST(TieredDecodeTest, HostAndDevicePagesReturnToZeroWhenFinishedOrCancelled) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {.page_size = 8});
  sched.Start();
  for (const bool cancel : {false, true}) {
    EngineRequest r{.id = "r", .prompt = Prompt(5, 200), .max_new_tokens = 80, .ignore_eos = true};
    r.kv_policy = Tiered("freekv");
    std::atomic<int> seen = 0;
    std::atomic<bool> done = false;
    SequenceOutput last;
    ASSERT_TRUE(sched
                    .Submit(r,
                            [&](SequenceOutput&& o) {
                              seen += static_cast<int>(o.tokens.size());
                              if (o.finished) {
                                last = std::move(o);
                                done = true;
                              }
                            })
                    .ok());
    while (seen < 20 && !done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const SchedulerStatus mid = sched.status();
    EXPECT_GT(mid.host_pages_used, 0);
    EXPECT_GT(mid.pages_used, 0);  // the device budget: the context outgrew it
    if (cancel) {
      EXPECT_TRUE(sched.Cancel("r"));
    }
    sched.WaitUntilIdle();
    ASSERT_TRUE(done);
    EXPECT_EQ(last.finish_reason, cancel ? FinishReason::kCancelled : FinishReason::kMaxTokens);
    const SchedulerStatus end = sched.status();
    EXPECT_EQ(end.host_pages_used, 0);
    EXPECT_EQ(end.pages_used, 0);
    EXPECT_GT(end.host_pages_total, 0);
  }
  sched.Stop();
}

// Runs `requests` on one engine (submitted together, then stepped on this thread: the same
// schedule every run) and returns each one's tokens and final output.
std::vector<SequenceOutput> RunTogether(CpuModel& m, const std::vector<EngineRequest>& requests,
                                        std::vector<std::vector<int32_t>>* tokens) {
  EngineCore sched(*m.backend, m.tokenizer.get(), {.max_batch_tokens = 64, .page_size = 8});
  std::vector<SequenceOutput> last(requests.size());
  tokens->assign(requests.size(), {});
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(sched
                    .Submit(requests[i],
                            [&, i](SequenceOutput&& o) {
                              (*tokens)[i].insert((*tokens)[i].end(), o.tokens.begin(),
                                                  o.tokens.end());
                              if (o.finished) last[i] = std::move(o);
                            })
                    .ok());
  }
  sched.RunUntilIdle();
  const SchedulerStatus end = sched.status();
  EXPECT_EQ(end.host_pages_used, 0);
  EXPECT_EQ(end.pages_used, 0);
  return last;
}

TEST(TieredDecodeTest, ConcurrentTieredRequestsEachGetWhatTheyGetAlone) {
  // Several sequences share the scheduler's recall worker and device pool; chunked prompts and a
  // small step budget interleave their layers' recalls with each other's prefill and decode, and
  // the decodes of others leave the 320-token prompt a one-token last chunk, which must run as a
  // prompt row (dense, no decode hooks) as it does alone. Several prompt sets: one passing set
  // proves little where page selection decides the tokens.
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const char* names[] = {"freekv", "quest", "fastkv_freekv", "freekv", "full", "freekv"};
  for (const uint32_t seeds : {10u, 100010u, 200010u, 300010u}) {
    std::vector<EngineRequest> requests;
    for (int i = 0; i < 6; ++i) {
      EngineRequest r{.id = std::to_string(i),
                      .prompt = Prompt(seeds + i, 120 + 40 * i),
                      .max_new_tokens = 30 + 5 * i,
                      .ignore_eos = true};
      r.kv_policy = std::string(names[i]) == "full" ? KvPolicyOptions(FullOptions{})
                                                    : Tiered(names[i], 64, 0.9f);
      requests.push_back(std::move(r));
    }
    std::vector<std::vector<int32_t>> together, alone(requests.size()), one;
    const std::vector<SequenceOutput> outputs = RunTogether(m, requests, &together);
    for (size_t i = 0; i < requests.size(); ++i) {
      RunTogether(m, {requests[i]}, &one);
      alone[i] = one[0];
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      const std::string what =
          absl::StrCat("request ", i, " (", names[i], "), prompt seed ", seeds + i);
      EXPECT_EQ(together[i].size(), static_cast<size_t>(requests[i].max_new_tokens)) << what;
      EXPECT_EQ(together[i], alone[i]) << what;
      if (std::string(names[i]) != "full") {
        // Every decode step and nothing else went through the policy's decode hooks.
        EXPECT_EQ(outputs[i].kv.decode_steps, requests[i].max_new_tokens - 1) << what;
        EXPECT_LT(outputs[i].kv.resident_fraction, 0.6) << what;  // sparse for real
      }
    }
  }
}

TEST(TieredDecodeTest, APromptsOneTokenLastChunkRunsAsAPromptRow) {
  // Alone, a 129-token prompt in steps of 64 ends with a one-token chunk: the policy's decode
  // hooks must not see it (they would count it as a decode step and, once a budget is held,
  // attend over its pages instead of the whole prompt).
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineRequest r{.id = "r", .prompt = Prompt(7, 129), .max_new_tokens = 12, .ignore_eos = true};
  r.kv_policy = Tiered("freekv", 64, 0.9f);
  std::vector<std::vector<int32_t>> tokens;
  const std::vector<SequenceOutput> out = RunTogether(m, {r}, &tokens);
  ASSERT_EQ(tokens[0].size(), 12u);
  EXPECT_EQ(out[0].kv.decode_steps, 11);
  EXPECT_LT(out[0].kv.resident_fraction, 1.0);
}

TEST(TieredDecodeTest, RefusesAnotherPageSizeAndATooSmallHostTier) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(),
                   {.page_size = 8, .kv_host_bytes = 64 * 1024});  // ~ a few pages
  EngineRequest r{.id = "a", .prompt = Prompt(6, 100), .max_new_tokens = 10};
  r.kv_policy = Tiered("freekv");
  TieredOptionsOf(*r.kv_policy)->page_size = 16;
  absl::Status s = sched.Submit(r, [](SequenceOutput&&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(FieldViolationOf(s)->path, "kv_policy.page_size") << s;
  TieredOptionsOf(*r.kv_policy)->page_size = 8;
  s = sched.Submit(r, [](SequenceOutput&&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("host tier"), std::string::npos) << s;
  // A full request fits the device pool and is not held to the host tier's size.
  r.kv_policy = FullOptions{};
  EXPECT_TRUE(sched.Submit(r, [](SequenceOutput&&) {}).ok());
  sched.RunUntilIdle();
}

TEST(TieredDecodeTest, ABudgetWithNoRoomBeyondSinkAndRecentIsRefused) {
  CpuModel m = LoadStories260K();
  KvPolicyOptions kv = Tiered("freekv", /*budget=*/24);  // 3 pages: 1 sink + 2 recent
  const absl::Status s = ValidateKvPolicyOptions(kv, m.config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationOf(s)->path, "budget") << s;
  TieredOptionsOf(kv)->budget = 32;
  EXPECT_TRUE(ValidateKvPolicyOptions(kv, m.config).ok());
  // fastkv's budget/tsp_len cross-check is FastKV's own: fastkv_freekv's budget is GPU tokens.
  kv = Tiered("fastkv_freekv", 256);
  std::get<FastKvFreeKvOptions>(kv).tsp_len = 100;
  EXPECT_TRUE(ValidateKvPolicyOptions(kv, m.config).ok());
}

}  // namespace
}  // namespace kvserve::testing
