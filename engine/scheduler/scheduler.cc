#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <utility>

namespace kvserve {

Scheduler::Scheduler(const ModelConfig& config, KvCacheManager& kv, const SchedulerOptions& options,
                     const OutputProcessor& output)
    : config_(config), kv_(kv), options_(options), output_(output) {}

Scheduler::~Scheduler() = default;

void Scheduler::Add(std::unique_ptr<Sequence> sequence) {
  waiting_.push_back(std::move(sequence));
  Sequence& s = *waiting_.back();
  // The policy (whose state scales with its options) is made here, on the engine thread, once
  // the request is admitted; validated at submit, so only a failing allocation ends it.
  absl::StatusOr<std::unique_ptr<SequenceKv>> kv = kv_.Create(*s.request.kv_policy);
  if (kv.ok()) {
    s.kv = *std::move(kv);
    return;
  }
  Finish(s, FinishReason::kError, std::string(kv.status().message()));
  RemoveFinished();
}

bool Scheduler::Abort(const std::string& id, FinishReason reason) {
  auto match = [&id](const std::unique_ptr<Sequence>& s) { return s->request.id == id; };
  Sequence* found = nullptr;
  if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
    found = it->get();
  } else if (auto w = std::find_if(waiting_.begin(), waiting_.end(), match); w != waiting_.end()) {
    found = w->get();
  }
  if (found == nullptr) return false;
  Finish(*found, reason);
  RemoveFinished();
  return true;
}

void Scheduler::AbortIf(const std::function<bool(const Sequence&)>& match, FinishReason reason) {
  for (auto& s : running_) {
    if (match(*s)) Finish(*s, reason);
  }
  for (auto& s : waiting_) {
    if (match(*s)) Finish(*s, reason);
  }
  RemoveFinished();
}

int Scheduler::PrefillChunkSize(const Sequence& s, int budget, bool first_in_line) const {
  const int remaining = static_cast<int>(s.tokens.size()) - s.computed;
  if (s.kv->policy->needs_whole_prompt()) {
    // The policy scores the whole prompt in one pass, so it cannot be chunked. Larger than what is
    // left of the budget, it waits until it is the first prompt of a step and then runs over it:
    // waiting for a whole empty budget could starve it behind a steady stream of decodes.
    return remaining <= budget || first_in_line ? remaining : 0;
  }
  return std::clamp(budget, 0, remaining);
}

void Scheduler::AddChunk(Sequence& s, int n) {
  s.positions.resize(n);
  // Logical positions (prompt index), never cache lengths: a policy may have dropped rows.
  for (int i = 0; i < n; ++i) s.positions[i] = s.computed + i;
  const int total = static_cast<int>(s.tokens.size());
  const bool whole_prompt = s.computed == 0 && n == total;
  // The policy plans the prompt's compression from its length, before the step runs it.
  s.compression = whole_prompt ? s.kv->policy->PlanPrompt(n) : PromptCompressionPlan{};
  // A prompt's last chunk may be one token too: only the state says the sequence decodes.
  const ChunkKind kind =
      s.state == SequenceState::kDecoding ? ChunkKind::kDecode : ChunkKind::kPrompt;
  if (s.state == SequenceState::kWaiting) s.state = SequenceState::kPrefilling;
  plan_.chunks.push_back({.tokens = std::span<const int32_t>(s.tokens).subspan(s.computed, n),
                          .positions = s.positions,
                          .kv = &s.kv->cache,
                          .compute_logits = s.computed + n == total,
                          .policy = s.kv->policy.get(),
                          .whole_prompt = whole_prompt,
                          .compression = &s.compression,
                          .decode_pages = &s.decode_pages,
                          .kind = kind});
  plan_.sequences.push_back(&s);
}

void Scheduler::PlanChunks(bool admit) {
  plan_.Clear();
  int budget = options_.max_batch_tokens;
  for (auto& s : running_) {
    if (s->state == SequenceState::kDecoding) {
      AddChunk(*s, 1);
      --budget;
    }
  }
  // Prompt chunks, FCFS: sequences already mid-prefill, then waiting ones.
  bool prefill_scheduled = false;
  for (auto& s : running_) {
    if (s->state == SequenceState::kDecoding) continue;
    const int n = PrefillChunkSize(*s, budget, !prefill_scheduled);
    if (n == 0) return;  // blocked: nothing behind it goes first
    AddChunk(*s, n);
    budget -= n;
    prefill_scheduled = true;
  }
  while (admit && !waiting_.empty() && static_cast<int>(running_.size()) < options_.max_running) {
    const int n = PrefillChunkSize(*waiting_.front(), budget, !prefill_scheduled);
    if (n == 0) break;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    AddChunk(*running_.back(), n);
    budget -= n;
    prefill_scheduled = true;
  }
}

Sequence* Scheduler::GrowPlanned() {
  for (size_t i = 0; i < plan_.chunks.size(); ++i) {
    // Grow is idempotent for a given length: pages taken in an earlier try still count.
    Sequence& s = *plan_.sequences[i];
    const SequenceChunk& chunk = plan_.chunks[i];
    if (!kv_.Grow(*s.kv, static_cast<int>(chunk.tokens.size()), chunk.kind)) return &s;
  }
  return nullptr;
}

const StepPlan& Scheduler::Schedule(EngineClock::time_point now) {
  bool preempted = false;
  for (;;) {
    // After a preemption this step admits nothing new: the pool is short as it is.
    PlanChunks(/*admit=*/!preempted);
    Sequence* short_of_pages = GrowPlanned();
    if (short_of_pages == nullptr) break;
    preempted = true;
    if (running_.size() == 1) {
      // Alone and still short: admission makes this unreachable, but never loop on it.
      Finish(*short_of_pages, FinishReason::kError, "the KV page pool cannot hold this sequence");
      RemoveFinished();
      continue;
    }
    auto newest =
        std::max_element(running_.begin(), running_.end(),
                         [](const auto& a, const auto& b) { return a->arrival < b->arrival; });
    Preempt(**newest);
  }
  for (Sequence* s : plan_.sequences) CountDequeued(*s, now);
  return plan_;
}

void Scheduler::CountDequeued(Sequence& s, EngineClock::time_point now) {
  if (s.first_scheduled) return;
  s.first_scheduled = now;
  ++dequeued_.requests;
  dequeued_.prompt_tokens += s.prompt_len;
}

void Scheduler::Preempt(Sequence& s) {
  // Recomputed later from prompt + generated tokens; a sequence with nothing computed (admitted in
  // this step) just goes back in line.
  if (s.computed > 0) {
    ++s.preemptions;
    ++preemptions_total_;
  }
  s.computed = 0;
  s.state = SequenceState::kWaiting;
  const absl::Status reset = kv_.Reset(*s.kv, *s.request.kv_policy);
  auto it =
      std::find_if(running_.begin(), running_.end(), [&s](const auto& r) { return r.get() == &s; });
  waiting_.push_front(std::move(*it));
  running_.erase(it);
  if (!reset.ok()) {
    Finish(s, FinishReason::kError, std::string(reset.message()));
    RemoveFinished();
  }
}

void Scheduler::Update(const absl::Status& step, StepOutput* out) {
  const EngineClock::time_point now = EngineClock::now();
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  for (size_t i = 0; i < plan_.chunks.size(); ++i) {
    Sequence& s = *plan_.sequences[i];
    const SequenceChunk& chunk = plan_.chunks[i];
    // A failed step ends its whole batch, a failed chunk only its own sequence: either way the
    // cache may hold part of the step, so the sequence cannot go on.
    const absl::Status& status = step.ok() ? out->chunk_status[i] : step;
    if (!status.ok()) {
      Finish(s, FinishReason::kError, std::string(status.message()));
      continue;
    }
    s.computed += static_cast<int>(chunk.tokens.size());
    if (chunk.policy != nullptr && i < out->kv_counts.size() && !out->kv_counts[i].empty()) {
      chunk.policy->RecordDeviceCounts(out->kv_counts[i]);
    }
    for (const KvRetention& r : out->retained[i]) {
      if (r.rows.empty()) {
        kv_.Truncate(*s.kv, r.layer, r.length);
      } else {
        kv_.Retain(*s.kv, r.layer, r.rows);
      }
    }
    const int row = out->logits_row[i];
    if (!chunk.compute_logits || row < 0) continue;
    if (!s.prefill_done) s.prefill_done = now;
    SampleNext(s, std::span(out->logits).subspan(row * vocab, vocab), now);
  }
  plan_.Clear();
  RemoveFinished();
}

void Scheduler::SampleNext(Sequence& s, std::span<float> logits, EngineClock::time_point now) {
  if (s.request.logprobs > 0) raw_logits_.assign(logits.begin(), logits.end());
  output_.MaskEarlyStops(s, logits);
  const int32_t token = s.sampler.Sample(logits, s.history);
  s.history.AddOutput(token);
  s.tokens.push_back(token);
  s.state = SequenceState::kDecoding;
  if (!s.first_token) s.first_token = now;
  s.last_token = now;
  if (std::optional<StopDecision> stop = output_.Accept(s, token, raw_logits_)) {
    Finish(s, stop->reason, std::move(stop->matched));
  }
}

void Scheduler::Finish(Sequence& s, FinishReason reason, std::string detail) {
  if (s.finished()) return;
  s.state = SequenceState::kFinished;
  output_.Flush(s, reason);
  s.out.finished = true;
  s.out.finish_reason = reason;
  if (reason == FinishReason::kError) {
    s.out.error = std::move(detail);
  } else {
    s.out.matched_stop = std::move(detail);
  }
  // Stats before the pages go; they go now rather than when the sequence is destroyed.
  s.out.kv = s.kv != nullptr ? kv_.Release(*s.kv)
                             : KvStats{.policy = std::string(KvPolicyName(*s.request.kv_policy))};
  ++finished_total_;
  if (!s.first_scheduled) {
    ++dequeued_.requests;
    dequeued_.prompt_tokens += s.prompt_len;
  }
}

void Scheduler::RemoveFinished() {
  auto take = [this](auto& sequences) {
    for (auto& s : sequences) {
      if (s->finished()) finished_.push_back(std::move(s));
    }
    std::erase_if(sequences, [](const std::unique_ptr<Sequence>& s) { return s == nullptr; });
  };
  take(running_);
  take(waiting_);
}

std::vector<std::unique_ptr<Sequence>> Scheduler::TakeFinished() { return std::move(finished_); }

Scheduler::Dequeued Scheduler::TakeDequeued() { return std::exchange(dequeued_, {}); }

}  // namespace kvserve
