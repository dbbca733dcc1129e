#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <limits>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"
#include "engine/scheduler/request_validation.h"
#include "engine/scheduler/sequence.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

SchedulerOptions Sanitized(SchedulerOptions o, const Tokenizer* tokenizer) {
  o.max_batch_tokens = std::max(1, o.max_batch_tokens);
  // Decodes are scheduled first, one token each: they must all fit one step's budget.
  o.max_running = std::clamp(o.max_running, 1, o.max_batch_tokens);
  o.page_size = std::max(1, o.page_size);
  if (o.eos_id < 0 && tokenizer != nullptr) o.eos_id = tokenizer->eos_id();
  return o;
}

KvPageShape PageShape(const ModelConfig& c, int page_size) {
  return {.n_kv_heads = c.n_kv_heads, .page_size = page_size, .head_dim = c.head_dim};
}

// The KV budget in pages, no more than the backend's own KV memory holds (a device arena).
int64_t DevicePoolPages(const Backend& backend, int page_size, int64_t bytes) {
  int64_t pages =
      std::min(PagePool::kUnbounded, PagePool::PagesForBytes(PageShape(backend.config(), page_size),
                                                             bytes, backend.kv_element_bytes()));
  if (const int64_t cap = backend.kv_page_capacity(page_size); cap >= 0) {
    pages = std::min(pages, cap);
  }
  return pages;
}

}  // namespace

// The engine's outputs of one step, handed to the callbacks once mu_ is released.
struct Scheduler::Delivery {
  Sequence* sequence;
  SequenceOutput output;
};

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kMaxTokens:
      return "max_tokens";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

double RequestTiming::decode_tokens_per_s() const {
  return completion_tokens > 1 && decode_ms > 0 ? (completion_tokens - 1) * 1000.0 / decode_ms
                                                : 0.0;
}

Scheduler::Scheduler(Backend& backend, const Tokenizer* tokenizer, SchedulerOptions options)
    : backend_(backend),
      tokenizer_(tokenizer),
      options_(Sanitized(std::move(options), tokenizer)),
      output_(options_.eos_id),
      pool_(PageShape(backend.config(), options_.page_size),
            DevicePoolPages(backend, options_.page_size, options_.kv_cache_bytes)),
      host_pool_(PageShape(backend.config(), options_.page_size),
                 std::min(PagePool::kUnbounded,
                          PagePool::PagesForBytes(PageShape(backend.config(), options_.page_size),
                                                  options_.kv_host_bytes))) {
  status_.pages_total = pool_.total_pages();
  status_.host_pages_total = host_pool_.total_pages();
  status_.page_size = options_.page_size;
}

Scheduler::~Scheduler() {
  Stop();
  std::lock_guard join(join_mu_);
  if (engine_.joinable()) engine_.join();
}

double Scheduler::max_concurrency_at_full_context() const {
  const ModelConfig& c = backend_.config();
  const int64_t per_sequence =
      static_cast<int64_t>(c.n_layers) * CeilDiv(c.context_length, options_.page_size);
  return per_sequence > 0 ? static_cast<double>(pool_.total_pages()) / per_sequence : 0.0;
}

absl::Status Scheduler::Submit(EngineRequest request, OutputCallback on_output) {
  return Submit(std::move(request), std::move(on_output), nullptr);
}

absl::Status Scheduler::Submit(EngineRequest request, OutputCallback on_output,
                               std::string* assigned_id) {
  if (!on_output) return absl::InvalidArgumentError("on_output callback is missing");
  if (!request.kv_policy) request.kv_policy = options_.default_kv_policy;
  const ModelConfig& config = backend_.config();
  KVSERVE_RETURN_IF_ERROR(ValidateEngineRequest(request, config, tokenizer_));
  KVSERVE_RETURN_IF_ERROR(backend_.Supports(*request.kv_policy));
  // The last generated token is never fed back, so the cache peaks one short of the total.
  const int64_t peak_tokens =
      static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens - 1;
  const TieredOptions* tiered_options = TieredOptionsOf(*request.kv_policy);
  const bool tiered = tiered_options != nullptr;
  if (tiered && tiered_options->page_size != options_.page_size) {
    // The host tier's pages are the selection unit: one page size per server.
    return InvalidField("kv_policy.page_size",
                        absl::StrCat("must be the server's KV page size (", options_.page_size,
                                     "), got ", tiered_options->page_size));
  }
  PagePool& home = tiered ? host_pool_ : pool_;
  const int64_t pages =
      config.n_layers * CeilDiv(peak_tokens, static_cast<int64_t>(options_.page_size));
  if (pages > home.total_pages()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "prompt + max_new_tokens (", peak_tokens + 1, " tokens) needs ", pages, " KV pages, more ",
        tiered ? "than the whole host tier (" : "than the whole pool (", home.total_pages(), ")"));
  }
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  const std::string given_id = request.id;
  // The policy (whose state scales with its options) is made on the engine thread once the
  // request is admitted (TakeCommands), not on the caller's thread before.
  auto seq = std::make_unique<Sequence>(std::move(request), std::move(on_output), nullptr, home,
                                        config.n_layers, tokenizer_);

  std::lock_guard lock(mu_);
  if (stop_) return absl::UnavailableError("the scheduler is stopped");
  if (draining_) return absl::UnavailableError("the scheduler is draining: no new requests");
  std::string id = given_id;
  if (id.empty()) {
    do {
      id = absl::StrCat("req-", ++next_generated_id_);
    } while (live_ids_.contains(id));
  } else if (live_ids_.contains(id)) {
    return absl::InvalidArgumentError(absl::StrCat("request id '", id, "' is already in use"));
  }
  if (queued_requests_ >= options_.max_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrCat("the queue is full: ", queued_requests_,
                                                     " requests waiting (max_queued_requests)"));
  }
  if (queued_prompt_tokens_ + prompt_tokens > options_.max_queued_prompt_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue is full: ", queued_prompt_tokens_, " prompt tokens waiting + ", prompt_tokens,
        " exceed max_queued_prompt_tokens (", options_.max_queued_prompt_tokens, ")"));
  }
  seq->request.id = id;
  seq->arrival = next_arrival_++;
  live_ids_.insert(id);
  ++queued_requests_;
  queued_prompt_tokens_ += prompt_tokens;
  if (assigned_id != nullptr) *assigned_id = std::move(id);
  incoming_.push_back(std::move(seq));
  wake_.notify_one();
  return absl::OkStatus();
}

bool Scheduler::Cancel(const std::string& request_id, FinishReason reason) {
  if (reason != FinishReason::kDeadline) reason = FinishReason::kCancelled;
  std::lock_guard lock(mu_);
  if (!live_ids_.contains(request_id)) return false;
  cancels_.emplace_back(request_id, reason);
  wake_.notify_one();
  return true;
}

SchedulerStatus Scheduler::status() const {
  std::lock_guard lock(mu_);
  SchedulerStatus s = status_;
  s.waiting += static_cast<int>(incoming_.size());
  s.pages_used = pool_.used_pages();
  s.host_pages_used = host_pool_.used_pages();
  s.draining = draining_;
  return s;
}

void Scheduler::Start() {
  std::lock_guard lock(mu_);
  if (stop_ || engine_.joinable()) return;
  engine_ = std::thread(&Scheduler::EngineLoop, this);
  engine_id_ = engine_.get_id();
}

void Scheduler::BeginDrain() {
  std::lock_guard lock(mu_);
  draining_ = true;
}

void Scheduler::Stop() {
  bool first;
  bool on_engine_thread;
  {
    std::lock_guard lock(mu_);
    first = !stop_;
    stop_ = true;
    draining_ = true;
    on_engine_thread = std::this_thread::get_id() == engine_id_;
  }
  wake_.notify_all();
  // From a callback on the engine thread: the loop ends after this step; the destructor joins.
  if (on_engine_thread) return;
  std::lock_guard join(join_mu_);
  if (engine_.joinable()) {
    engine_.join();  // the engine thread cancels what is left before it exits
  } else if (first) {
    CancelAll();
  }
}

void Scheduler::RunUntilIdle() {
  bool started;
  {
    std::lock_guard lock(mu_);
    started = engine_.joinable();
  }
  if (started) {
    WaitUntilIdle();
    return;
  }
  while (Step()) {
  }
}

void Scheduler::WaitUntilIdle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return live_ids_.empty() && !delivering_; });
}

void Scheduler::EngineLoop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] {
        return stop_ || !incoming_.empty() || !cancels_.empty() || !running_.empty() ||
               !waiting_.empty();
      });
      if (stop_) break;
    }
    Step();
  }
  CancelAll();
}

bool Scheduler::HasWork() const {
  if (!running_.empty() || !waiting_.empty()) return true;
  std::lock_guard lock(mu_);
  return !incoming_.empty() || !cancels_.empty();
}

bool Scheduler::Step() {
  TakeCommands();
  ApplyCancels();
  const EngineClock::time_point now = EngineClock::now();
  ExpireDeadlines(now);
  RemoveFinished();
  if (!running_.empty() || !waiting_.empty()) {
    ScheduleBatch(now);
    if (!batch_.empty()) RunBatch();
  }
  Publish();
  return HasWork();
}

void Scheduler::TakeCommands() {
  std::deque<std::unique_ptr<Sequence>> arrived;
  {
    std::lock_guard lock(mu_);
    arrived.swap(incoming_);
    step_cancels_.swap(cancels_);
  }
  for (auto& s : arrived) {
    absl::StatusOr<std::unique_ptr<KvPolicy>> policy = NewPolicy(*s->request.kv_policy);
    waiting_.push_back(std::move(s));
    Sequence& admitted = *waiting_.back();
    if (policy.ok()) {
      admitted.policy = *std::move(policy);
      continue;
    }
    // Validated at Submit, so only a failing allocation gets here: it ends this request alone.
    admitted.policy = *CreateKvPolicy(FullOptions{}, backend_.config());
    Finish(admitted, FinishReason::kError, std::string(policy.status().message()));
  }
}

void Scheduler::ApplyCancels() {
  for (const auto& [id, reason] : step_cancels_) {
    auto match = [&id](const std::unique_ptr<Sequence>& s) { return s->request.id == id; };
    if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
      Finish(**it, reason);
    } else if (auto w = std::find_if(waiting_.begin(), waiting_.end(), match);
               w != waiting_.end()) {
      Finish(**w, reason);
    }
  }
  step_cancels_.clear();
}

void Scheduler::ExpireDeadlines(EngineClock::time_point now) {
  auto expire = [&](auto& sequences) {
    for (auto& s : sequences) {
      if (s->request.deadline && *s->request.deadline <= now) Finish(*s, FinishReason::kDeadline);
    }
  };
  expire(running_);
  expire(waiting_);
}

int Scheduler::PrefillChunkSize(const Sequence& s, int budget, bool first_in_line) const {
  const int remaining = static_cast<int>(s.tokens.size()) - s.computed;
  if (s.policy->needs_whole_prompt()) {
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
  s.compression = whole_prompt ? s.policy->PlanPrompt(n) : PromptCompressionPlan{};
  batch_.push_back({.tokens = std::span<const int32_t>(s.tokens).subspan(s.computed, n),
                    .positions = s.positions,
                    .kv = &s.kv,
                    .compute_logits = s.computed + n == total,
                    .policy = s.policy.get(),
                    .whole_prompt = whole_prompt,
                    .compression = &s.compression});
  batch_seqs_.push_back(&s);
}

void Scheduler::ScheduleBatch(EngineClock::time_point now) {
  bool preempted = false;
  for (;;) {
    batch_.clear();
    batch_seqs_.clear();
    int budget = options_.max_batch_tokens;
    for (auto& s : running_) {
      if (s->decoding) {
        AddChunk(*s, 1);
        --budget;
      }
    }
    // Prompt chunks, FCFS: sequences already mid-prefill, then waiting ones.
    bool prefill_scheduled = false;
    bool blocked = false;
    for (auto& s : running_) {
      if (s->decoding) continue;
      const int n = PrefillChunkSize(*s, budget, !prefill_scheduled);
      if (n == 0) {
        blocked = true;
        break;
      }
      AddChunk(*s, n);
      budget -= n;
      prefill_scheduled = true;
    }
    // After a preemption this step admits nothing new: the pool is short as it is.
    while (!blocked && !preempted && !waiting_.empty() &&
           static_cast<int>(running_.size()) < options_.max_running) {
      const int n = PrefillChunkSize(*waiting_.front(), budget, !prefill_scheduled);
      if (n == 0) break;
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      AddChunk(*running_.back(), n);
      budget -= n;
      prefill_scheduled = true;
    }

    Sequence* short_of_pages = nullptr;
    for (size_t i = 0; i < batch_.size(); ++i) {
      // Grow is idempotent for a given length: pages taken in an earlier try still count.
      Sequence& s = *batch_seqs_[i];
      const int n = static_cast<int>(batch_[i].tokens.size());
      // A new page changes the page tables a recall in flight may be reading.
      if (s.kv.PagesToGrow(n) > 0) s.policy->WaitIdle();
      if (!s.kv.Grow(n)) {
        short_of_pages = batch_seqs_[i];
        break;
      }
    }
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

  for (Sequence* s : batch_seqs_) {
    if (s->first_scheduled != EngineClock::time_point{}) continue;
    s->first_scheduled = now;
    ++dequeued_requests_;
    dequeued_prompt_tokens_ += s->prompt_len;
  }
}

void Scheduler::Preempt(Sequence& s) {
  // Recomputed later from prompt + generated tokens; a sequence with nothing computed (admitted in
  // this step) just goes back in line.
  if (s.computed > 0) {
    ++s.preemptions;
    ++preemptions_total_;
  }
  s.policy->WaitIdle();  // no recall reads the pages once they go back
  s.kv.Release();
  s.computed = 0;
  s.decoding = false;
  // A fresh policy for the fresh cache: policy state describes the cache it has seen.
  if (auto policy = NewPolicy(*s.request.kv_policy); policy.ok()) s.policy = *std::move(policy);
  auto it =
      std::find_if(running_.begin(), running_.end(), [&s](const auto& r) { return r.get() == &s; });
  waiting_.push_front(std::move(*it));
  running_.erase(it);
}

absl::StatusOr<std::unique_ptr<KvPolicy>> Scheduler::NewPolicy(const KvPolicyOptions& options) {
  try {
    return CreateKvPolicy(options, backend_.config(), {.device_pool = &pool_, .recall = &recall_});
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "no memory for kv policy '", std::string(KvPolicyName(options)), "' of this request"));
  }
}

void Scheduler::RunBatch() {
  const absl::Status status = backend_.Execute(batch_, &step_out_);
  const EngineClock::time_point now = EngineClock::now();
  const size_t vocab = static_cast<size_t>(backend_.config().vocab_size);
  for (size_t i = 0; i < batch_.size(); ++i) {
    Sequence& s = *batch_seqs_[i];
    // A failed step ends its whole batch, a failed chunk only its own sequence: either way the
    // cache may hold part of the step, so the sequence cannot go on.
    const absl::Status& chunk = status.ok() ? step_out_.chunk_status[i] : status;
    if (!chunk.ok()) {
      Finish(s, FinishReason::kError, std::string(chunk.message()));
      continue;
    }
    s.computed += static_cast<int>(batch_[i].tokens.size());
    const int row = step_out_.logits_row[i];
    if (!batch_[i].compute_logits || row < 0) continue;
    if (s.prefill_done == EngineClock::time_point{}) s.prefill_done = now;
    SampleNext(s, std::span(step_out_.logits).subspan(row * vocab, vocab), now);
  }
  RemoveFinished();
}

void Scheduler::SampleNext(Sequence& s, std::span<float> logits, EngineClock::time_point now) {
  if (s.request.logprobs > 0) raw_logits_.assign(logits.begin(), logits.end());
  output_.MaskEarlyStops(s, logits);
  const int32_t token = s.sampler.Sample(logits, s.history);
  s.history.AddOutput(token);
  s.tokens.push_back(token);
  s.decoding = true;
  if (s.first_token == EngineClock::time_point{}) s.first_token = now;
  s.last_token = now;
  if (std::optional<StopDecision> stop = output_.Accept(s, token, raw_logits_)) {
    Finish(s, stop->reason, std::move(stop->matched));
  }
}

void Scheduler::Finish(Sequence& s, FinishReason reason, std::string detail) {
  if (s.finished) return;
  s.finished = true;
  output_.Flush(s, reason);
  s.out.finished = true;
  s.out.finish_reason = reason;
  if (reason == FinishReason::kError) {
    s.out.error = std::move(detail);
  } else {
    s.out.matched_stop = std::move(detail);
  }
  s.out.kv = s.policy->Stats(s.kv);  // before the pages go
  // The policy's device budget pages and recalls go now rather than when the sequence is
  // destroyed after delivery; a plain policy stands in until then.
  s.policy = *CreateKvPolicy(FullOptions{}, backend_.config());
  s.kv.Release();
  ++finished_total_;
  if (s.first_scheduled == EngineClock::time_point{}) {
    ++dequeued_requests_;
    dequeued_prompt_tokens_ += s.prompt_len;
  }
}

void Scheduler::RemoveFinished() {
  auto take = [this](auto& sequences) {
    for (auto& s : sequences) {
      if (s->finished) finished_.push_back(std::move(s));
    }
    std::erase_if(sequences, [](const std::unique_ptr<Sequence>& s) { return s == nullptr; });
  };
  take(running_);
  take(waiting_);
}

void Scheduler::Publish() {
  const EngineClock::time_point now = EngineClock::now();
  auto hand_out = [&](Sequence& s) {
    SequenceOutput& out = s.out;
    out.request_id = s.request.id;
    out.prompt_tokens = s.prompt_len;
    out.completion_tokens = s.generated();
    out.timing = s.Timing(now);
    out.preemptions = s.preemptions;
    deliveries_.push_back({&s, std::move(out)});
    out = SequenceOutput{};
  };
  for (auto& s : running_) {
    if (!s->out.tokens.empty()) hand_out(*s);
  }
  for (auto& s : finished_) hand_out(*s);
  {
    std::lock_guard lock(mu_);
    status_.running = static_cast<int>(running_.size());
    status_.waiting = static_cast<int>(waiting_.size());
    status_.preemptions_total = preemptions_total_;
    status_.finished_total = finished_total_;
    queued_requests_ -= dequeued_requests_;
    queued_prompt_tokens_ -= dequeued_prompt_tokens_;
    for (auto& s : finished_) live_ids_.erase(s->request.id);
    delivering_ = !deliveries_.empty();
  }
  dequeued_requests_ = 0;
  dequeued_prompt_tokens_ = 0;
  for (Delivery& d : deliveries_) d.sequence->on_output(std::move(d.output));
  deliveries_.clear();
  finished_.clear();
  std::lock_guard lock(mu_);
  delivering_ = false;
  if (live_ids_.empty()) idle_.notify_all();
}

void Scheduler::CancelAll() {
  TakeCommands();
  step_cancels_.clear();
  for (auto& s : running_) Finish(*s, FinishReason::kCancelled);
  for (auto& s : waiting_) Finish(*s, FinishReason::kCancelled);
  RemoveFinished();
  Publish();
}

}  // namespace kvserve
