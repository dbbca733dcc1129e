#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/recall_executor.h"
#include "engine/model/tokenizer.h"
#include "engine/runtime/backend.h"
#include "engine/sampling/sampling_params.h"
#include "engine/scheduler/engine_request.h"
#include "engine/scheduler/output_processor.h"

namespace kvserve {

struct SchedulerOptions {
  int max_batch_tokens = 2048;  // tokens per engine step: decodes first, then prefill chunks
  int max_running = 64;         // sequences in the running batch
  int max_queued_requests = 256;
  int64_t max_queued_prompt_tokens = 1 << 20;
  int page_size = 32;
  int64_t kv_cache_bytes = int64_t{2} << 30;  // the (device) KV page pool's budget
  // The host tier's budget: the full KV of quest/freekv/fastkv_freekv sequences (their device
  // budget pages come from the KV page pool).
  int64_t kv_host_bytes = int64_t{8} << 30;
  int32_t eos_id = -1;
  KvPolicyOptions default_kv_policy;
};

struct SchedulerStatus {
  int running = 0;
  int waiting = 0;
  int64_t pages_used = 0;  // the (device) KV page pool
  int64_t pages_total = 0;
  int64_t host_pages_used = 0;  // the host tier
  int64_t host_pages_total = 0;
  int page_size = 0;
  int64_t preemptions_total = 0;
  int64_t finished_total = 0;
  bool draining = false;
};

struct Sequence;  // engine/scheduler/sequence.h

// Continuous batching on one engine thread (DESIGN.md § Data flow). Each step: take new and
// cancelled requests, schedule running decodes first and then prompt chunks (FCFS) within the
// token budget, grow each sequence's KV pages (preempting the newest running sequence, to be
// recomputed, when the pool is short), run the backend, sample, apply stop rules, emit outputs.
// Submit, Cancel and status are thread-safe. Stop rules, in order: EOS (unless ignore_eos), a stop
// token id, a stop string (text held back while it could still start one; the text ends before
// it), max_new_tokens; none of the first three before min_new_tokens.
class Scheduler {
 public:
  // `tokenizer` may be null (synthetic models: no text, no stop strings). Both must outlive this.
  // max_batch_tokens and page_size are at least 1; max_running is at most max_batch_tokens so
  // every running sequence's decode token fits one step. eos_id < 0 takes the tokenizer's.
  Scheduler(Backend& backend, const Tokenizer* tokenizer, SchedulerOptions options);
  ~Scheduler();  // stops the engine thread; unfinished requests end as kCancelled
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Capacity the KV budget gives: sequences that fit at the model's full context.
  double max_concurrency_at_full_context() const;
  const SchedulerOptions& options() const { return options_; }

  // Queues a request. InvalidArgument naming the field (prompt empty or out of vocabulary, prompt +
  // max_new_tokens beyond the context, sampling, kv policy, a tiered policy's page_size other than
  // the pool's, duplicate id); ResourceExhausted when the queue is full (requests or prompt
  // tokens) or the request could never fit in its KV pool (the host tier for tiered policies);
  // Unavailable while draining. `on_output` receives every output of the request, the last one
  // with finished set, exactly once per request that was accepted. An empty id gets a unique
  // "req-<n>" (every SequenceOutput carries it); an absent kv_policy takes the default policy.
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
  struct Delivery;

  bool Step();  // one engine step; false when no work is left
  void EngineLoop();
  // Moves submissions into waiting_ and takes the pending cancellations.
  void TakeCommands();
  void ApplyCancels();
  void ExpireDeadlines(EngineClock::time_point now);
  // Picks this step's chunks within the token budget and grows their KV pages, preempting the
  // newest running sequence while the pool is short. Fills batch_ / batch_seqs_.
  void ScheduleBatch(EngineClock::time_point now);
  void AddChunk(Sequence& s, int n);
  // Tokens of `s`'s prompt (or recompute) to run now; 0 when it must wait.
  int PrefillChunkSize(const Sequence& s, int budget, bool first_in_line) const;
  void Preempt(Sequence& s);
  // A fresh policy for `options`, tiered ones on the shared device pool and recall worker.
  absl::StatusOr<std::unique_ptr<KvPolicy>> NewPolicy(const KvPolicyOptions& options);
  void RunBatch();
  // Samples `s`'s next token, hands it to the output processor, ends `s` on a stop rule.
  void SampleNext(Sequence& s, std::span<float> logits, EngineClock::time_point now);
  // Ends `s`: final output fields, KV stats, pages released. `detail` is the matched stop (kStop)
  // or the error message (kError).
  void Finish(Sequence& s, FinishReason reason, std::string detail = {});
  // Moves finished sequences out of running_ / waiting_ into finished_.
  void RemoveFinished();
  // Publishes status, then hands this step's outputs to their callbacks (outside mu_).
  void Publish();
  void CancelAll();
  bool HasWork() const;

  Backend& backend_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  OutputProcessor output_;
  PagePool pool_;       // device: full/snapkv/fastkv caches, tiered policies' budgets
  PagePool host_pool_;  // host tier: tiered policies' full caches
  ThreadRecallExecutor recall_;
  // Shared with other threads under mu_.
  mutable std::mutex mu_;
  std::condition_variable wake_;  // the engine thread sleeps on it while idle
  std::condition_variable idle_;  // WaitUntilIdle
  std::deque<std::unique_ptr<Sequence>> incoming_;
  std::vector<std::pair<std::string, FinishReason>> cancels_;
  absl::flat_hash_set<std::string> live_ids_;  // accepted, final output not yet handed out
  int64_t queued_requests_ = 0;                // submitted, never scheduled yet
  int64_t queued_prompt_tokens_ = 0;
  uint64_t next_arrival_ = 0;
  uint64_t next_generated_id_ = 0;
  bool draining_ = false;
  bool delivering_ = false;  // outputs of a step are being handed out
  bool stop_ = false;
  SchedulerStatus status_;  // published under mu_ after each step
  std::thread::id engine_id_;
  std::mutex join_mu_;  // one Stop joins the engine thread
  std::thread engine_;
  // Engine-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting_;    // FCFS; preempted ones go back to the front
  std::vector<std::unique_ptr<Sequence>> running_;   // admission order
  std::vector<std::unique_ptr<Sequence>> finished_;  // this step's, destroyed after delivery
  std::vector<std::pair<std::string, FinishReason>> step_cancels_;
  std::vector<SequenceChunk> batch_;
  std::vector<Sequence*> batch_seqs_;  // owner of each batch_ chunk
  StepOutput step_out_;
  std::vector<float> raw_logits_;  // unmodified logits for logprobs
  std::vector<Delivery> deliveries_;
  int64_t dequeued_requests_ = 0;  // left the queue this step (scheduled or ended)
  int64_t dequeued_prompt_tokens_ = 0;
  int64_t preemptions_total_ = 0;
  int64_t finished_total_ = 0;
};

}  // namespace kvserve
