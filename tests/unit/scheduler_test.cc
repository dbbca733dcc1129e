// The continuous-batching scheduler: whatever else runs beside a request (arrivals mid-decode,
// chunked prompts, preemption), it gets exactly the tokens it gets alone; every way a request can
// end (stop rules, cancel, deadline, drain, stop, a failing forward) ends it cleanly and frees its
// pages; bad requests are refused at Submit with a reason naming the field.
#include "engine/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/kv/page_pool.h"
#include "engine/scheduler/batch_generator.h"
#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

// Everything one request's callback received.
struct Outcome {
  std::string id;
  std::vector<int32_t> tokens;
  std::string text;
  std::vector<TokenLogprobs> logprobs;
  int outputs = 0;
  std::optional<SequenceOutput> final;  // the output with finished set
};

OutputCallback Collect(Outcome* o) {
  return [o](SequenceOutput&& out) {
    EXPECT_FALSE(o->final.has_value()) << "output after the final one";
    EXPECT_FALSE(out.request_id.empty());
    ++o->outputs;
    o->id = out.request_id;
    o->tokens.insert(o->tokens.end(), out.tokens.begin(), out.tokens.end());
    o->text += out.text;
    o->logprobs.insert(o->logprobs.end(), out.logprobs.begin(), out.logprobs.end());
    EXPECT_EQ(out.completion_tokens, static_cast<int>(o->tokens.size()));
    if (out.finished) o->final = std::move(out);
  };
}

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int32_t> d(3, 511);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(d(rng));
  return p;
}

EngineRequest Request(std::vector<int32_t> prompt, int max_new_tokens, std::string id = "") {
  return {.id = std::move(id), .prompt = std::move(prompt), .max_new_tokens = max_new_tokens};
}

// Bytes of one KV page as `backend` stores it (what --kv-cache-memory buys).
int64_t PageBytes(const Backend& backend, int page_size) {
  const ModelConfig& c = backend.config();
  return static_cast<int64_t>(
      KvPageShape{.n_kv_heads = c.n_kv_heads, .page_size = page_size, .head_dim = c.head_dim}.bytes(
          backend.kv_element_bytes()));
}

// Passes every step to the real backend, recording what the scheduler asked for. A chunk that
// carries `poison` (a prompt token) gets a compression plan its cache cannot take at the middle
// layer, so the real backend fails that chunk mid-step: error isolation, tested end to end.
class RecordingBackend : public Backend {
 public:
  struct Chunk {
    int tokens;
    int32_t first_position;
    bool compute_logits;
    bool whole_prompt;
    bool has_policy;
  };

  explicit RecordingBackend(Backend& inner) : inner_(inner) {
    poisoned_plan_.layers.assign(inner.config().n_layers, {});
    poisoned_plan_.layers[inner.config().n_layers / 2] = {.window = 1 << 20, .keep = 1};
  }
  std::string_view name() const override { return "recording"; }
  const ModelConfig& config() const override { return inner_.config(); }
  absl::Status Execute(std::span<const SequenceChunk> batch, StepOutput* out) override {
    int step_tokens = 0;
    std::vector<SequenceChunk> chunks_run(batch.begin(), batch.end());
    for (SequenceChunk& c : chunks_run) {
      chunks.push_back({static_cast<int>(c.tokens.size()), c.positions.front(), c.compute_logits,
                        c.whole_prompt, c.policy != nullptr});
      step_tokens += static_cast<int>(c.tokens.size());
      if (c.tokens.size() > 1 &&
          std::find(c.tokens.begin(), c.tokens.end(), poison) != c.tokens.end()) {
        poisoned_plan_.prompt_tokens = static_cast<int>(c.tokens.size());
        c.whole_prompt = true;
        c.compression = &poisoned_plan_;
      }
    }
    steps.push_back(step_tokens);
    return inner_.Execute(chunks_run, out);
  }

  int64_t kv_page_capacity(int page_size) const override { return capacity; }
  KvDtype kv_dtype() const override { return inner_.kv_dtype(); }
  size_t kv_element_bytes() const override {
    return element_bytes > 0 ? element_bytes : inner_.kv_element_bytes();
  }
  // The pages' memory is the inner backend's, which reads and writes it.
  KvPageStore* AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                  int64_t max_pages) override {
    return inner_.AcquireKvPageStore(tier, shape, max_pages);
  }
  void ReleaseKvPageStore(KvPageStore* store) override { inner_.ReleaseKvPageStore(store); }

  std::vector<Chunk> chunks;
  std::vector<int> steps;  // tokens per forward
  int32_t poison = -1;
  PromptCompressionPlan poisoned_plan_;
  int64_t capacity = -1;     // what the backend reports it can hold of KV pages
  size_t element_bytes = 0;  // 0: the inner backend's

 private:
  Backend& inner_;
};

void ExpectIdle(const EngineCore& s) {
  const SchedulerStatus st = s.status();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_EQ(st.pages_used, 0);
}

TEST(SchedulerTest, ArrivalsDuringDecodeGetTheirLoneTokens) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  std::mt19937 rng(11);
  const std::vector<std::vector<int32_t>> prompts = {
      {1}, RandomPrompt(rng, 30), RandomPrompt(rng, 70), RandomPrompt(rng, 5)};
  const std::vector<int> max_new = {40, 20, 12, 25};
  EngineCore sched(*m.backend, m.tokenizer.get(), {.max_batch_tokens = 16, .page_size = 8});
  std::vector<Outcome> out(prompts.size());
  // The first request brings the others in while it decodes: after its 3rd and 10th tokens.
  OutputCallback collect_first = Collect(&out[0]);
  auto first = [&](SequenceOutput&& o) {
    collect_first(std::move(o));
    const size_t n = out[0].tokens.size();
    if (n == 3) {
      ASSERT_TRUE(sched.Submit(Request(prompts[1], max_new[1]), Collect(&out[1])).ok());
    }
    if (n == 10) {
      for (size_t i : {2, 3}) {
        ASSERT_TRUE(sched.Submit(Request(prompts[i], max_new[i]), Collect(&out[i])).ok());
      }
    }
  };
  ASSERT_TRUE(sched.Submit(Request(prompts[0], max_new[0]), first).ok());
  sched.RunUntilIdle();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(out[i].final.has_value()) << i;
    EXPECT_EQ(out[i].tokens, Greedy(m, prompts[i], max_new[i])) << "request " << i;
    EXPECT_EQ(out[i].final->prompt_tokens, static_cast<int>(prompts[i].size()));
    EXPECT_EQ(out[i].final->kv.policy, "full");
    EXPECT_GE(out[i].final->timing.e2e_ms, out[i].final->timing.ttft_ms);
  }
  EXPECT_EQ(sched.status().finished_total, 4);
  ExpectIdle(sched);
}

TEST(SchedulerTest, EngineThreadServesRequestsSubmittedFromAnotherThread) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  std::mt19937 rng(5);
  EngineCore sched(*m.backend, m.tokenizer.get(), {.max_batch_tokens = 24, .max_running = 3});
  sched.Start();
  std::vector<std::vector<int32_t>> prompts;
  std::vector<Outcome> out(6);
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(RandomPrompt(rng, 4 + 13 * i));
    ASSERT_TRUE(sched.Submit(Request(prompts.back(), 16), Collect(&out[i])).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // staggered arrivals
  }
  sched.WaitUntilIdle();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(out[i].final.has_value()) << i;
    EXPECT_EQ(out[i].tokens, Greedy(m, prompts[i], 16)) << "request " << i;
  }
  ExpectIdle(sched);
  sched.Stop();
}

TEST(SchedulerTest, TinyTokenBudgetChunksPromptsWithoutChangingTokens) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  RecordingBackend rec(*m.backend);
  std::mt19937 rng(3);
  const std::vector<int32_t> long_prompt = RandomPrompt(rng, 50);
  const std::vector<int32_t> short_prompt = RandomPrompt(rng, 20);
  EngineCore sched(rec, m.tokenizer.get(), {.max_batch_tokens = 3, .page_size = 4});
  Outcome a, b;
  ASSERT_TRUE(sched.Submit(Request(long_prompt, 12), Collect(&a)).ok());
  ASSERT_TRUE(sched.Submit(Request(short_prompt, 12), Collect(&b)).ok());
  sched.RunUntilIdle();
  EXPECT_EQ(a.tokens, Greedy(m, long_prompt, 12));
  EXPECT_EQ(b.tokens, Greedy(m, short_prompt, 12));
  for (int step : rec.steps) EXPECT_LE(step, 3);
  for (const auto& c : rec.chunks) EXPECT_TRUE(c.has_policy);
  ExpectIdle(sched);
}

TEST(SchedulerTest, PositionsAreLogicalPromptThenGeneratedIndices) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  RecordingBackend rec(*m.backend);
  EngineCore sched(rec, m.tokenizer.get(), {.max_batch_tokens = 4});
  Outcome o;
  ASSERT_TRUE(sched.Submit(Request({1, 403, 407, 261, 378, 432}, 6), Collect(&o)).ok());
  sched.RunUntilIdle();
  // Prompt chunks of 4 + 2, then one token per decode step at prompt + generated - 1.
  std::vector<std::pair<int, int32_t>> got;
  for (const auto& c : rec.chunks) got.emplace_back(c.tokens, c.first_position);
  EXPECT_EQ(got, (std::vector<std::pair<int, int32_t>>{
                     {4, 0}, {2, 4}, {1, 6}, {1, 7}, {1, 8}, {1, 9}, {1, 10}}));
  EXPECT_FALSE(rec.chunks[0].compute_logits);
  EXPECT_TRUE(rec.chunks[1].compute_logits);
}

TEST(SchedulerTest, CancelWhileQueuedEndsItAndLeavesOthersAlone) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {.max_running = 1});
  Outcome a, b;
  ASSERT_TRUE(sched.Submit(Request({1}, 20, "a"), Collect(&a)).ok());
  ASSERT_TRUE(sched.Submit(Request({1, 403}, 20, "b"), Collect(&b)).ok());
  EXPECT_TRUE(sched.Cancel("b"));
  EXPECT_FALSE(sched.Cancel("nobody"));
  sched.RunUntilIdle();
  ASSERT_TRUE(b.final.has_value());
  EXPECT_EQ(b.final->finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(b.outputs, 1);
  EXPECT_EQ(a.tokens, Greedy(m, {1}, 20));
  EXPECT_FALSE(sched.Cancel("a"));  // finished: no longer live
  ExpectIdle(sched);
}

TEST(SchedulerTest, CancelMidPrefillFreesItsPagesWithinAStep) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  std::mt19937 rng(9);
  const std::vector<int32_t> long_prompt = RandomPrompt(rng, 300);
  EngineCore sched(*m.backend, m.tokenizer.get(), {.max_batch_tokens = 4, .page_size = 4});
  Outcome a, b;
  int64_t pages_at_cancel = 0;
  OutputCallback collect_a = Collect(&a);
  auto on_a = [&](SequenceOutput&& o) {
    collect_a(std::move(o));
    // Two steps in, the long prompt has run two 3-token chunks of its 300.
    if (a.tokens.size() == 2) {
      pages_at_cancel = sched.status().pages_used;
      EXPECT_TRUE(sched.Cancel("long"));
    }
  };
  ASSERT_TRUE(sched.Submit(Request({1}, 30, "short"), on_a).ok());
  ASSERT_TRUE(sched.Submit(Request(long_prompt, 4, "long"), Collect(&b)).ok());
  sched.RunUntilIdle();
  // The short one alone holds one page per layer then: the rest are the long prompt's.
  EXPECT_GT(pages_at_cancel, m.config.n_layers);
  ASSERT_TRUE(b.final.has_value());
  EXPECT_EQ(b.final->finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(b.final->prompt_tokens, 300);
  EXPECT_EQ(a.tokens, Greedy(m, {1}, 30));
  ExpectIdle(sched);
}

TEST(SchedulerTest, CancelWhileDecodingStopsWithinOneStep) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  Outcome a, d;
  OutputCallback collect_a = Collect(&a);
  OutputCallback collect_d = Collect(&d);
  ASSERT_TRUE(sched
                  .Submit(Request({1}, 50, "a"),
                          [&](SequenceOutput&& o) {
                            collect_a(std::move(o));
                            if (a.tokens.size() == 3 && !a.final) sched.Cancel("a");
                          })
                  .ok());
  ASSERT_TRUE(sched
                  .Submit(Request({1, 403}, 50, "d"),
                          [&](SequenceOutput&& o) {
                            collect_d(std::move(o));
                            if (d.tokens.size() == 4 && !d.final) {
                              sched.Cancel("d", FinishReason::kDeadline);
                            }
                          })
                  .ok());
  sched.RunUntilIdle();
  ASSERT_TRUE(a.final.has_value() && d.final.has_value());
  EXPECT_EQ(a.final->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(a.tokens.size(), 3u);
  EXPECT_EQ(a.final->completion_tokens, 3);
  EXPECT_EQ(d.final->finish_reason, FinishReason::kDeadline);
  EXPECT_EQ(d.tokens.size(), 4u);
  EXPECT_EQ(FinishReasonName(a.final->finish_reason), "cancelled");
  EXPECT_EQ(FinishReasonName(d.final->finish_reason), "deadline");
  ExpectIdle(sched);
}

TEST(SchedulerTest, PreemptedRequestsRecomputeAndStillMatchTheirLoneRuns) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int page_size = 4;
  // 100 pages: one request at its peak (20 + 39 cached tokens) holds 75 of them.
  EngineCore sched(*m.backend, m.tokenizer.get(),
                   {.max_batch_tokens = 64,
                    .page_size = page_size,
                    .kv_cache_bytes = 100 * PageBytes(*m.backend, page_size)});
  std::mt19937 rng(21);
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request(RandomPrompt(rng, 20), 40));
  requests[3].sampling = {.temperature = 0.9f, .top_p = 0.9f, .seed = 77};
  requests[3].ignore_eos = true;
  std::vector<Outcome> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(sched.Submit(requests[i], Collect(&out[i])).ok());
  }
  sched.RunUntilIdle();
  int preemptions = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(out[i].final.has_value());
    preemptions += out[i].final->preemptions;
    // Alone, in a pool that holds it whole.
    EngineCore lone(*m.backend, m.tokenizer.get(), {});
    Outcome alone;
    ASSERT_TRUE(lone.Submit(requests[i], Collect(&alone)).ok());
    lone.RunUntilIdle();
    EXPECT_EQ(out[i].tokens, alone.tokens) << "request " << i;
    EXPECT_EQ(out[i].text, alone.text) << "request " << i;
    EXPECT_EQ(out[i].final->finish_reason, alone.final->finish_reason);
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(sched.status().preemptions_total, preemptions);
  ExpectIdle(sched);
}

void ExpectRefused(EngineCore& sched, EngineRequest r, absl::StatusCode code,
                   const std::string& fragment) {
  Outcome o;
  const absl::Status s = sched.Submit(std::move(r), Collect(&o));
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_NE(std::string(s.message()).find(fragment), std::string::npos)
      << "'" << fragment << "' not in: " << s;
}

TEST(SchedulerTest, InvalidRequestsAreRefusedNamingTheField) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  const auto bad = absl::StatusCode::kInvalidArgument;
  ExpectRefused(sched, Request({}, 4), bad, "prompt is empty");
  ExpectRefused(sched, Request({1, 99999}, 4), bad,
                "prompt[1] = 99999 is outside the vocabulary [0, 512)");
  ExpectRefused(sched, Request({1, -1}, 4), bad, "prompt[1] = -1");
  ExpectRefused(sched, Request({1}, 0), bad, "max_new_tokens must be >= 1, got 0");
  EngineRequest min_over_max = Request({1}, 4);
  min_over_max.min_new_tokens = 5;
  ExpectRefused(sched, min_over_max, bad, "min_new_tokens must not exceed");
  ExpectRefused(
      sched, Request(std::vector<int32_t>(500, 1), 13), bad,
      "max_new_tokens (13) plus the prompt's 500 tokens exceeds the model's context length 512");
  EngineRequest sampling = Request({1}, 4);
  sampling.sampling.top_p = 1.5f;
  ExpectRefused(sched, sampling, bad, "sampling.top_p must be in (0, 1], got 1.5");
  EngineRequest policy = Request({1}, 4);
  SnapKvOptions no_window;
  no_window.window = 0;
  policy.kv_policy = no_window;
  ExpectRefused(sched, policy, bad, "kv_policy.window must be >= 1, got 0");
  EngineRequest logprobs = Request({1}, 4);
  logprobs.logprobs = 21;
  ExpectRefused(sched, logprobs, bad, "logprobs must be in [0, 20], got 21");
  EngineRequest stop_ids = Request({1}, 4);
  stop_ids.stop_token_ids = {600};
  ExpectRefused(sched, stop_ids, bad, "stop_token_ids[0] = 600");
  EngineRequest empty_stop = Request({1}, 4);
  empty_stop.stop = {""};
  ExpectRefused(sched, empty_stop, bad, "stop[0] is empty");

  EngineCore no_tokenizer(*m.backend, nullptr, {});
  EngineRequest stop = Request({1}, 4);
  stop.stop = {"The"};
  ExpectRefused(no_tokenizer, stop, bad, "stop needs a tokenizer");

  Outcome first;
  ASSERT_TRUE(sched.Submit(Request({1}, 2, "dup"), Collect(&first)).ok());
  ExpectRefused(sched, Request({1}, 2, "dup"), bad, "request id 'dup' is already in use");
  sched.RunUntilIdle();
  Outcome again;
  EXPECT_TRUE(sched.Submit(Request({1}, 2, "dup"), Collect(&again)).ok());  // finished: reusable
  sched.RunUntilIdle();
  EXPECT_EQ(sched.status().finished_total, 2);
}

TEST(SchedulerTest, FullQueueAndOversizedRequestsAreResourceExhausted) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const auto full = absl::StatusCode::kResourceExhausted;
  EngineCore by_count(*m.backend, m.tokenizer.get(), {.max_queued_requests = 2});
  std::vector<Outcome> out(3);
  ASSERT_TRUE(by_count.Submit(Request({1}, 2), Collect(&out[0])).ok());
  ASSERT_TRUE(by_count.Submit(Request({1}, 2), Collect(&out[1])).ok());
  ExpectRefused(by_count, Request({1}, 2), full, "max_queued_requests");
  by_count.RunUntilIdle();
  EXPECT_TRUE(by_count.Submit(Request({1}, 2), Collect(&out[2])).ok());  // the queue drained
  by_count.RunUntilIdle();

  EngineCore by_tokens(*m.backend, m.tokenizer.get(), {.max_queued_prompt_tokens = 10});
  Outcome o;
  ASSERT_TRUE(by_tokens.Submit(Request(std::vector<int32_t>(6, 1), 2), Collect(&o)).ok());
  ExpectRefused(by_tokens, Request(std::vector<int32_t>(6, 1), 2), full,
                "max_queued_prompt_tokens");
  by_tokens.RunUntilIdle();

  const int page_size = 8;
  EngineCore small_pool(*m.backend, m.tokenizer.get(),
                        {.page_size = page_size, .kv_cache_bytes = 20 * PageBytes(*m.backend, 8)});
  // 5 layers x ceil(100 / 8) pages = 65 > 20.
  ExpectRefused(small_pool, Request({1}, 100), full, "KV pages");
  Outcome fits;
  EXPECT_TRUE(small_pool.Submit(Request({1}, 32), Collect(&fits)).ok());  // 5 x 4 = 20 pages
  small_pool.RunUntilIdle();
  EXPECT_EQ(fits.tokens.size(), 32u);
}

TEST(SchedulerTest, CapacityAtFullContextCountsWholeContextSequences) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const int page_size = 32;
  const int64_t per_sequence = m.config.n_layers * (m.config.context_length / page_size);
  EngineCore sched(
      *m.backend, m.tokenizer.get(),
      {.page_size = page_size, .kv_cache_bytes = 3 * per_sequence * PageBytes(*m.backend, 32)});
  EXPECT_DOUBLE_EQ(sched.max_concurrency_at_full_context(), 3.0);
  EXPECT_EQ(sched.status().pages_total, 3 * per_sequence);
  EXPECT_EQ(sched.status().page_size, page_size);
}

TEST(SchedulerTest, PoolNeverExceedsWhatTheBackendCanHold) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  RecordingBackend rec(*m.backend);
  rec.capacity = 40;  // a device arena smaller than the byte budget
  EngineCore small(rec, m.tokenizer.get(), {.kv_cache_bytes = int64_t{1} << 30});
  EXPECT_EQ(small.status().pages_total, 40);
  rec.capacity = -1;  // no limit of its own: the byte budget decides
  EngineCore budgeted(rec, m.tokenizer.get(),
                      {.page_size = 16, .kv_cache_bytes = 100 * PageBytes(*m.backend, 16)});
  EXPECT_EQ(budgeted.status().pages_total, 100);
  ASSERT_EQ(m.backend->kv_element_bytes(), 2u);  // the CPU's fp16 KV
  rec.element_bytes = 4;                         // an fp32 cache: the same bytes buy half the pages
  EngineCore f32(rec, m.tokenizer.get(),
                 {.page_size = 16, .kv_cache_bytes = 100 * PageBytes(*m.backend, 16)});
  EXPECT_EQ(f32.status().pages_total, 50);
}

TEST(SchedulerTest, EmptyIdGetsAGeneratedOneCarriedByEveryOutput) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  std::string id1, id2;
  Outcome a, b;
  ASSERT_TRUE(sched.Submit(Request({1}, 3), Collect(&a), &id1).ok());
  ASSERT_TRUE(sched.Submit(Request({1}, 3), Collect(&b), &id2).ok());
  EXPECT_EQ(id1.rfind("req-", 0), 0u) << id1;
  EXPECT_NE(id1, id2);
  sched.RunUntilIdle();
  EXPECT_EQ(a.id, id1);
  EXPECT_EQ(b.id, id2);
  EXPECT_EQ(a.outputs, 3);  // one per step that produced a token
}

TEST(SchedulerTest, DeadlinesEndQueuedAndRunningRequests) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  EngineRequest past = Request({1}, 10);
  past.deadline = EngineClock::now() - std::chrono::seconds(1);
  EngineRequest soon = Request({1, 403}, 100);
  soon.deadline = EngineClock::now() + std::chrono::milliseconds(300);
  Outcome p, s;
  OutputCallback collect_s = Collect(&s);
  ASSERT_TRUE(sched.Submit(past, Collect(&p)).ok());
  ASSERT_TRUE(sched
                  .Submit(soon,
                          [&](SequenceOutput&& o) {
                            collect_s(std::move(o));
                            // Outlive the deadline after two tokens.
                            if (s.tokens.size() == 2 && !s.final) {
                              std::this_thread::sleep_until(*soon.deadline);
                            }
                          })
                  .ok());
  sched.RunUntilIdle();
  ASSERT_TRUE(p.final.has_value() && s.final.has_value());
  EXPECT_EQ(p.final->finish_reason, FinishReason::kDeadline);
  EXPECT_TRUE(p.tokens.empty());
  EXPECT_EQ(s.final->finish_reason, FinishReason::kDeadline);
  EXPECT_LE(s.tokens.size(), 2u);
  ExpectIdle(sched);
}

TEST(SchedulerTest, StopStringEndsTheTextRightBeforeIt) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  const std::vector<int32_t> greedy = Greedy(m, {1}, 40);
  const std::string full = m.tokenizer->Decode(greedy);
  ASSERT_NE(full.find("a little girl"), std::string::npos) << full;
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  auto run = [&](std::vector<std::string> stops, int min_new_tokens = 0) {
    EngineRequest r = Request({1}, 40);
    r.stop = std::move(stops);
    r.min_new_tokens = min_new_tokens;
    Outcome o;
    EXPECT_TRUE(sched.Submit(r, Collect(&o)).ok());
    sched.RunUntilIdle();
    return o;
  };
  // Spans several tokens; the text up to it streams out, the match itself never does.
  const Outcome girl = run({"a little girl"});
  ASSERT_TRUE(girl.final.has_value());
  EXPECT_EQ(girl.final->finish_reason, FinishReason::kStop);
  EXPECT_EQ(girl.final->matched_stop, "a little girl");
  EXPECT_EQ(girl.text, full.substr(0, full.find("a little girl")));
  EXPECT_EQ(girl.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + girl.tokens.size()));
  // The earliest match wins, whichever is listed first.
  const Outcome first = run({"girl", "time"});
  EXPECT_EQ(first.final->matched_stop, "time");
  EXPECT_EQ(first.text, full.substr(0, full.find("time")));
  // Never matched: the held-back text comes out at the end.
  const Outcome none = run({"dragon"});
  EXPECT_EQ(none.final->finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(none.text, full);
  // Before min_new_tokens a stop string is ignored.
  const Outcome late = run({"Once"}, 3);
  EXPECT_EQ(late.final->finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(late.text, full);
  ExpectIdle(sched);
}

TEST(SchedulerTest, StopTokenIdEndsWithStopAndNamesTheId) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  EngineRequest r = Request({1}, 20);
  r.stop_token_ids = {261};  // greedy from BOS: 403 407 261 ...
  Outcome o;
  ASSERT_TRUE(sched.Submit(r, Collect(&o)).ok());
  sched.RunUntilIdle();
  EXPECT_EQ(o.tokens, (std::vector<int32_t>{403, 407, 261}));
  EXPECT_EQ(o.final->finish_reason, FinishReason::kStop);
  EXPECT_EQ(o.final->matched_stop, "261");
  EXPECT_EQ(FinishReasonName(FinishReason::kStop), "stop");
  EXPECT_EQ(o.final->kv.kept_tokens, std::vector<int>(m.config.n_layers, 3));  // 1 + 2 fed back
}

TEST(SchedulerTest, MinNewTokensKeepsEosAndStopIdsAway) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  // Token 261 (greedy's third) as EOS makes an early end to suppress.
  EngineCore sched(*m.backend, m.tokenizer.get(), {.eos_id = 261});
  auto run = [&](int min_new_tokens, bool ignore_eos, std::vector<int32_t> stop_ids) {
    EngineRequest r = Request({1}, 12);
    r.min_new_tokens = min_new_tokens;
    r.ignore_eos = ignore_eos;
    r.stop_token_ids = std::move(stop_ids);
    Outcome o;
    EXPECT_TRUE(sched.Submit(r, Collect(&o)).ok());
    sched.RunUntilIdle();
    return o;
  };
  const Outcome eos = run(0, false, {});
  EXPECT_EQ(eos.tokens, (std::vector<int32_t>{403, 407, 261}));
  EXPECT_EQ(eos.final->finish_reason, FinishReason::kEos);
  const Outcome held = run(6, false, {});
  ASSERT_GE(held.tokens.size(), 6u);
  for (int i = 0; i < 5; ++i) EXPECT_NE(held.tokens[i], 261) << i;
  const Outcome ignored = run(0, true, {});
  EXPECT_EQ(ignored.tokens.size(), 12u);
  EXPECT_EQ(ignored.final->finish_reason, FinishReason::kMaxTokens);
  // The same for a stop id, with EOS ignored.
  const Outcome stop_id = run(6, true, {261});
  ASSERT_GE(stop_id.tokens.size(), 6u);
  for (int i = 0; i < 5; ++i) EXPECT_NE(stop_id.tokens[i], 261) << i;
}

TEST(SchedulerTest, LogprobsGiveTheChosenTokenAndTopNMostLikelyFirst) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  EngineRequest with = Request({1}, 8);
  with.logprobs = 5;
  Outcome o, none;
  ASSERT_TRUE(sched.Submit(with, Collect(&o)).ok());
  ASSERT_TRUE(sched.Submit(Request({1}, 8), Collect(&none)).ok());
  sched.RunUntilIdle();
  EXPECT_TRUE(none.logprobs.empty());
  ASSERT_EQ(o.logprobs.size(), o.tokens.size());
  for (size_t i = 0; i < o.logprobs.size(); ++i) {
    const TokenLogprobs& lp = o.logprobs[i];
    EXPECT_EQ(lp.token, o.tokens[i]);
    ASSERT_EQ(lp.top.size(), 5u);
    for (size_t k = 1; k < lp.top.size(); ++k) EXPECT_GE(lp.top[k - 1].second, lp.top[k].second);
    // Greedy picks the most likely token.
    EXPECT_EQ(lp.top[0].first, lp.token);
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    EXPECT_LE(lp.logprob, 0.0f);
  }
}

TEST(SchedulerTest, DrainRefusesNewRequestsAndFinishesAdmittedOnes) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  Outcome a;
  ASSERT_TRUE(sched.Submit(Request({1}, 10), Collect(&a)).ok());
  sched.BeginDrain();
  EXPECT_TRUE(sched.status().draining);
  ExpectRefused(sched, Request({1}, 10), absl::StatusCode::kUnavailable, "draining");
  sched.RunUntilIdle();
  EXPECT_EQ(a.final->finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(a.tokens.size(), 10u);
}

TEST(SchedulerTest, StopCancelsWhatIsLeft) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  {
    // Never started: Stop ends the queue on the calling thread.
    EngineCore sched(*m.backend, m.tokenizer.get(), {});
    Outcome a;
    ASSERT_TRUE(sched.Submit(Request({1}, 10), Collect(&a)).ok());
    sched.Stop();
    ASSERT_TRUE(a.final.has_value());
    EXPECT_EQ(a.final->finish_reason, FinishReason::kCancelled);
    ExpectRefused(sched, Request({1}, 10), absl::StatusCode::kUnavailable, "stopped");
  }
  // On the engine thread: the request is mid-decode (its callback waits for Stop to begin).
  EngineCore sched(*m.backend, m.tokenizer.get(), {});
  std::atomic<bool> stopping = false;
  std::atomic<bool> first_token = false;
  Outcome a, queued;
  OutputCallback collect_a = Collect(&a);
  ASSERT_TRUE(sched
                  .Submit(Request({1}, 400),
                          [&](SequenceOutput&& o) {
                            collect_a(std::move(o));
                            first_token = true;
                            while (!stopping) std::this_thread::yield();
                          })
                  .ok());
  sched.Start();
  while (!first_token) std::this_thread::yield();
  stopping = true;
  sched.Stop();
  ASSERT_TRUE(a.final.has_value());
  EXPECT_EQ(a.final->finish_reason, FinishReason::kCancelled);
  EXPECT_LT(a.tokens.size(), 400u);
  ExpectIdle(sched);
}

TEST(SchedulerTest, AChunkFailingMidStepEndsOnlyItsSequence) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  RecordingBackend rec(*m.backend);
  rec.poison = 13;
  // Eight requests in one batch; the fourth fails at the middle layer of its prefill.
  EngineCore sched(rec, m.tokenizer.get(), {.max_batch_tokens = 512, .page_size = 8});
  std::mt19937 rng(21);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> p = RandomPrompt(rng, 10 + 7 * i);
    std::replace(p.begin(), p.end(), 13, 14);
    prompts.push_back(std::move(p));
  }
  prompts[3][5] = 13;
  std::vector<Outcome> out(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(sched.Submit(Request(prompts[i], 12), Collect(&out[i])).ok());
  }
  sched.RunUntilIdle();
  ASSERT_EQ(rec.steps.front(), 10 * 8 + 7 * 28);  // all eight prefilled in the first step
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(out[i].final.has_value()) << i;
    if (i == 3) {
      EXPECT_EQ(out[i].final->finish_reason, FinishReason::kError);
      EXPECT_NE(out[i].final->error.find("prompt compression at layer"), std::string::npos)
          << out[i].final->error;
      EXPECT_TRUE(out[i].tokens.empty());
      continue;
    }
    EXPECT_EQ(out[i].final->finish_reason, FinishReason::kMaxTokens) << i;
    EXPECT_EQ(out[i].tokens, Greedy(m, prompts[i], 12)) << "request " << i;
  }
  ExpectIdle(sched);
}

TEST(SchedulerTest, AnUnsupportedPolicyIsRefusedAtSubmit) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  // A backend that executes only `full`, as the CUDA one did.
  class FullOnly : public RecordingBackend {
   public:
    using RecordingBackend::RecordingBackend;
    absl::Status Supports(const KvPolicyOptions& o) const override {
      return KindOf(o) == KvPolicyKind::kFull ? absl::OkStatus()
                                              : absl::FailedPreconditionError(absl::StrCat(
                                                    "kv policy '", std::string(KvPolicyName(o)),
                                                    "' is not supported by this backend"));
    }
  } backend(*m.backend);
  EngineCore sched(backend, m.tokenizer.get(), {});
  EngineRequest r = Request({1, 403}, 4);
  r.kv_policy = SnapKvOptions{};
  Outcome o;
  const absl::Status s = sched.Submit(r, Collect(&o));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("snapkv"), std::string_view::npos);
  ASSERT_TRUE(sched.Submit(Request({1, 403}, 4), Collect(&o)).ok());
  sched.RunUntilIdle();
  EXPECT_EQ(o.tokens, Greedy(m, {1, 403}, 4));
}

TEST(SchedulerTest, WholePromptPolicyGetsItsPromptInOneChunk) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  SnapKvOptions snapkv;
  snapkv.budget = 256;
  if (!CreateKvPolicy(snapkv, m.config).ok()) GTEST_SKIP() << "snapkv not available";
  RecordingBackend rec(*m.backend);
  EngineCore sched(rec, m.tokenizer.get(), {.max_batch_tokens = 8});
  std::mt19937 rng(4);
  const std::vector<int32_t> prompt = RandomPrompt(rng, 40);
  EngineRequest decoding = Request({1}, 20);
  EngineRequest whole = Request(prompt, 6);
  whole.kv_policy = snapkv;
  Outcome a, b;
  OutputCallback collect_a = Collect(&a);
  ASSERT_TRUE(sched
                  .Submit(decoding,
                          [&](SequenceOutput&& o) {
                            collect_a(std::move(o));
                            if (a.tokens.size() == 2) {
                              ASSERT_TRUE(sched.Submit(whole, Collect(&b)).ok());
                            }
                          })
                  .ok());
  sched.RunUntilIdle();
  // 40 tokens over a budget of 8 (one of them a decode): one whole chunk, not five.
  int whole_chunks = 0;
  for (const auto& c : rec.chunks) {
    if (c.tokens > 1) {
      EXPECT_EQ(c.tokens, 40);
      EXPECT_TRUE(c.whole_prompt);
      ++whole_chunks;
    }
  }
  EXPECT_EQ(whole_chunks, 1);
  // A budget beyond the prompt keeps every token: the output equals full.
  EXPECT_EQ(b.tokens, Greedy(m, prompt, 6));
  EXPECT_EQ(b.final->kv.policy, "snapkv");
  EXPECT_EQ(a.tokens, Greedy(m, {1}, 20));
  ExpectIdle(sched);
}

}  // namespace
}  // namespace kvserve::testing
