#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "engine/base/mutex.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/tokenizer.h"
#include "engine/runtime/backend.h"
#include "engine/scheduler/engine_request.h"
#include "engine/scheduler/output_processor.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/scheduler_options.h"

namespace kvserve {

struct Sequence;  // engine/scheduler/sequence.h

// The engine (DESIGN.md § Data flow): one engine thread that, each step, takes new requests and
// cancellations from thread-safe queues, ends expired deadlines, asks the Scheduler for a step
// plan, runs it on the Backend, hands the output back to the Scheduler and delivers each
// request's outputs to its callback. Submit, Cancel and status are thread-safe. Stop rules, in
// order: EOS (unless ignore_eos), a stop token id, a stop string (text held back while it could
// still start one; the text ends before it), max_new_tokens; none of the first three before
// min_new_tokens.
class EngineCore {
 public:
  // `tokenizer` may be null (synthetic models: no text, no stop strings). Both must outlive this.
  // max_batch_tokens and page_size are at least 1; max_running is at most max_batch_tokens so
  // every running sequence's decode token fits one step. eos_id < 0 takes the tokenizer's.
  EngineCore(Backend& backend, const Tokenizer* tokenizer, SchedulerOptions options);
  ~EngineCore();  // stops the engine thread; unfinished requests end as kCancelled
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // Capacity the KV budget gives: sequences that fit at the model's full context.
  double max_concurrency_at_full_context() const;
  const SchedulerOptions& options() const { return options_; }

  // Queues a request. InvalidArgument naming the field (prompt empty or out of vocabulary, prompt +
  // max_new_tokens beyond the context, sampling, kv policy, a tiered policy's page_size other than
  // the pool's, duplicate id); FailedPrecondition when the backend cannot run its kv policy;
  // ResourceExhausted when the queue is full (requests or prompt tokens) or the request could
  // never fit in its KV pool (the host tier for tiered policies); Unavailable while draining.
  // `on_output` receives every output of the request, the last one with finished set, exactly
  // once per request that was accepted. An empty id gets a unique "req-<n>" (every SequenceOutput
  // carries it); an empty kv_policy name takes the default policy.
  absl::Status Submit(EngineRequest request, OutputCallback on_output);
  // As above; on success `*assigned_id` (when not null) is the request's id, given or generated.
  absl::Status Submit(EngineRequest request, OutputCallback on_output, std::string* assigned_id);

  // Ends a queued or running request within one step, freeing its pages; its last output has
  // `reason` (kCancelled or kDeadline; anything else counts as kCancelled). False when no live
  // request has that id.
  bool Cancel(const std::string& request_id, FinishReason reason = FinishReason::kCancelled);

  SchedulerStatus status() const;

  // Runs steps on a background engine thread until Stop.
  void Start();
  // Stops admitting (Submit answers Unavailable); running and queued requests go on.
  void BeginDrain();
  // Cancels everything left (kCancelled), then joins the engine thread. Without Start, call it
  // from the thread that runs RunUntilIdle (or the destructor does).
  void Stop();
  // Without Start: runs steps on the calling thread until no request is left (offline use).
  // After Start: waits until the engine thread has delivered every accepted request's last output.
  void RunUntilIdle();
  // After Start: blocks until no accepted request is left unfinished (its last output delivered).
  void WaitUntilIdle();

 private:
  using Cancellation = std::pair<std::string, FinishReason>;

  bool Step();  // one engine step; false when no work is left
  void EngineLoop();
  // Hands new submissions to the scheduler and applies the pending cancellations.
  void TakeCommands();
  // Publishes status, then hands this step's outputs to their callbacks (outside mu_).
  void Deliver();
  void CancelAll();
  bool HasWork() const;

  Backend& backend_;
  const Tokenizer* tokenizer_;
  const SchedulerOptions options_;
  const OutputProcessor output_;
  KvCacheManager kv_;  // before scheduler_: the sequences' pages go back before the pools go

  // Engine-thread state.
  Scheduler scheduler_;
  StepOutput step_out_;

  // Shared with the callers' threads.
  mutable Mutex mu_;
  CondVar wake_;  // the engine thread sleeps on it while idle
  CondVar idle_;  // WaitUntilIdle
  std::deque<std::unique_ptr<Sequence>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<Cancellation> cancels_ ABSL_GUARDED_BY(mu_);
  // Accepted, final output not yet handed out.
  absl::flat_hash_set<std::string> live_ids_ ABSL_GUARDED_BY(mu_);
  int64_t queued_requests_ ABSL_GUARDED_BY(mu_) = 0;  // submitted, never scheduled yet
  int64_t queued_prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_arrival_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_generated_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;  // outputs of a step are being handed out
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  SchedulerStatus status_ ABSL_GUARDED_BY(mu_);  // published after each step
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id engine_id_ ABSL_GUARDED_BY(mu_);
  Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one Stop joins the engine thread; taken before mu_
  std::thread engine_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace kvserve
