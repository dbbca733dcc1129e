#include "engine/scheduler/engine_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/scheduler/request_validation.h"
#include "engine/scheduler/sequence.h"

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

KvCacheBudget BudgetOf(const SchedulerOptions& o, const Backend& backend) {
  return {.page_size = o.page_size,
          .device_bytes = o.kv_cache_bytes,
          .host_bytes = o.kv_host_bytes,
          .device_element_bytes = backend.kv_element_bytes(),
          .device_page_capacity = backend.kv_page_capacity(o.page_size),
          .host_element_bytes = backend.kv_host_element_bytes(),
          .tiered_budget_from_first_step = backend.tiered_budget_from_first_step()};
}

}  // namespace

EngineCore::EngineCore(Backend& backend, const Tokenizer* tokenizer, SchedulerOptions options)
    : backend_(backend),
      tokenizer_(tokenizer),
      options_(Sanitized(std::move(options), tokenizer)),
      output_(options_.eos_id),
      kv_(backend.config(), BudgetOf(options_, backend), &backend),
      scheduler_(backend.config(), kv_, options_, output_) {
  MutexLock lock(&mu_);
  status_.pages_total = kv_.device_pages_total();
  status_.host_pages_total = kv_.host_pages_total();
  status_.page_size = options_.page_size;
}

EngineCore::~EngineCore() {
  Stop();
  MutexLock join(&join_mu_);
  if (engine_.joinable()) engine_.join();
}

double EngineCore::max_concurrency_at_full_context() const {
  return kv_.max_concurrency_at_full_context();
}

absl::Status EngineCore::Submit(EngineRequest request, OutputCallback on_output) {
  return Submit(std::move(request), std::move(on_output), nullptr);
}

absl::Status EngineCore::Submit(EngineRequest request, OutputCallback on_output,
                                std::string* assigned_id) {
  if (!on_output) return absl::InvalidArgumentError("on_output callback is missing");
  if (!request.kv_policy) request.kv_policy = options_.default_kv_policy;
  KVSERVE_RETURN_IF_ERROR(ValidateEngineRequest(request, backend_.config(), tokenizer_));
  KVSERVE_RETURN_IF_ERROR(backend_.Supports(*request.kv_policy));
  // The last generated token is never fed back, so the cache peaks one short of the total.
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  KVSERVE_RETURN_IF_ERROR(
      kv_.CheckFits(*request.kv_policy, prompt_tokens + request.max_new_tokens - 1));
  const std::string given_id = request.id;
  auto seq = std::make_unique<Sequence>(std::move(request), std::move(on_output), tokenizer_);

  MutexLock lock(&mu_);
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
  wake_.Signal();
  return absl::OkStatus();
}

bool EngineCore::Cancel(const std::string& request_id, FinishReason reason) {
  if (reason != FinishReason::kDeadline) reason = FinishReason::kCancelled;
  MutexLock lock(&mu_);
  if (!live_ids_.contains(request_id)) return false;
  cancels_.emplace_back(request_id, reason);
  wake_.Signal();
  return true;
}

SchedulerStatus EngineCore::status() const {
  MutexLock lock(&mu_);
  SchedulerStatus s = status_;
  s.waiting += static_cast<int>(incoming_.size());
  s.pages_used = kv_.device_pages_used();
  s.host_pages_used = kv_.host_pages_used();
  s.draining = draining_;
  return s;
}

void EngineCore::Start() {
  MutexLock join(&join_mu_);
  MutexLock lock(&mu_);
  if (stop_ || started_) return;
  started_ = true;
  engine_ = std::thread(&EngineCore::EngineLoop, this);
  engine_id_ = engine_.get_id();
}

void EngineCore::BeginDrain() {
  MutexLock lock(&mu_);
  draining_ = true;
}

void EngineCore::Stop() {
  bool first;
  bool on_engine_thread;
  {
    MutexLock lock(&mu_);
    first = !stop_;
    stop_ = true;
    draining_ = true;
    on_engine_thread = std::this_thread::get_id() == engine_id_;
    wake_.SignalAll();
  }
  // From a callback on the engine thread: the loop ends after this step; the destructor joins.
  if (on_engine_thread) return;
  MutexLock join(&join_mu_);
  if (engine_.joinable()) {
    engine_.join();  // the engine thread cancels what is left before it exits
  } else if (first) {
    CancelAll();
  }
}

void EngineCore::RunUntilIdle() {
  bool started;
  {
    MutexLock lock(&mu_);
    started = started_;
  }
  if (started) {
    WaitUntilIdle();
    return;
  }
  while (Step()) {
  }
}

void EngineCore::WaitUntilIdle() {
  MutexLock lock(&mu_);
  while (!live_ids_.empty() || delivering_) idle_.Wait(&mu_);
}

void EngineCore::EngineLoop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      while (!stop_ && incoming_.empty() && cancels_.empty() && !scheduler_.has_work()) {
        wake_.Wait(&mu_);
      }
      if (stop_) break;
    }
    Step();
  }
  CancelAll();
}

bool EngineCore::HasWork() const {
  if (scheduler_.has_work()) return true;
  MutexLock lock(&mu_);
  return !incoming_.empty() || !cancels_.empty();
}

bool EngineCore::Step() {
  TakeCommands();
  const EngineClock::time_point now = EngineClock::now();
  scheduler_.AbortIf(
      [now](const Sequence& s) { return s.request.deadline && *s.request.deadline <= now; },
      FinishReason::kDeadline);
  if (scheduler_.has_work()) {
    const StepPlan& plan = scheduler_.Schedule(now);
    if (!plan.empty()) {
      const absl::Status step = backend_.Execute(plan.chunks, &step_out_);
      scheduler_.Update(step, &step_out_);
    }
  }
  Deliver();
  return HasWork();
}

void EngineCore::TakeCommands() {
  std::deque<std::unique_ptr<Sequence>> arrived;
  std::vector<Cancellation> cancels;
  {
    MutexLock lock(&mu_);
    arrived.swap(incoming_);
    cancels.swap(cancels_);
  }
  for (auto& s : arrived) scheduler_.Add(std::move(s));
  for (const auto& [id, reason] : cancels) scheduler_.Abort(id, reason);
}

void EngineCore::Deliver() {
  const EngineClock::time_point now = EngineClock::now();
  std::vector<std::unique_ptr<Sequence>> finished = scheduler_.TakeFinished();
  std::vector<std::pair<Sequence*, SequenceOutput>> deliveries;
  auto hand_out = [&](Sequence& s) {
    SequenceOutput& out = s.out;
    out.request_id = s.request.id;
    out.prompt_tokens = s.prompt_len;
    out.completion_tokens = s.generated();
    out.timing = s.Timing(now);
    out.preemptions = s.preemptions;
    deliveries.emplace_back(&s, std::move(out));
    out = SequenceOutput{};
  };
  for (const auto& s : scheduler_.running()) {
    if (!s->out.tokens.empty()) hand_out(*s);
  }
  for (auto& s : finished) hand_out(*s);
  const Scheduler::Dequeued dequeued = scheduler_.TakeDequeued();
  {
    MutexLock lock(&mu_);
    status_.running = scheduler_.running_count();
    status_.waiting = scheduler_.waiting_count();
    status_.preemptions_total = scheduler_.preemptions_total();
    status_.finished_total = scheduler_.finished_total();
    queued_requests_ -= dequeued.requests;
    queued_prompt_tokens_ -= dequeued.prompt_tokens;
    for (auto& s : finished) live_ids_.erase(s->request.id);
    delivering_ = !deliveries.empty();
  }
  for (auto& [sequence, output] : deliveries) sequence->on_output(std::move(output));
  deliveries.clear();
  finished.clear();
  MutexLock lock(&mu_);
  delivering_ = false;
  if (live_ids_.empty()) idle_.SignalAll();
}

void EngineCore::CancelAll() {
  {
    MutexLock lock(&mu_);
    cancels_.clear();
  }
  TakeCommands();
  scheduler_.AbortIf([](const Sequence&) { return true; }, FinishReason::kCancelled);
  Deliver();
}

}  // namespace kvserve
