#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "engine/scheduler/engine_request.h"
#include "engine/scheduler/output_processor.h"
#include "engine/scheduler/scheduler_options.h"
#include "engine/scheduler/sequence.h"
#include "engine/scheduler/step_plan.h"

namespace kvserve {

// Continuous batching, single-threaded and without locks (vLLM v1's scheduler, nano-vllm's):
// Schedule() plans a step as data, running decodes first and then prompt chunks (FCFS) within the
// token budget, growing each sequence's KV pages through the KvCacheManager and preempting the
// newest running sequence (to be recomputed) when the pool is short; Update() takes the backend's
// output for that plan: it samples, hands each token to the OutputProcessor and ends sequences on
// a stop rule or a failed chunk. The EngineCore drives it on the engine thread.
class Scheduler {
 public:
  // Requests that left the queue (first scheduled, or ended while never scheduled).
  struct Dequeued {
    int64_t requests = 0;
    int64_t prompt_tokens = 0;
  };

  // `options` sanitized (EngineCore does); `kv` and `output` outlive the scheduler.
  Scheduler(const ModelConfig& config, KvCacheManager& kv, const SchedulerOptions& options,
            const OutputProcessor& output);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Puts a submitted sequence at the back of the waiting line with its KV cache and policy; when
  // those cannot be made (no memory) it ends alone with kError.
  void Add(std::unique_ptr<Sequence> sequence);
  // Ends the live sequence `id` (running or waiting) with `reason`; false when there is none.
  bool Abort(const std::string& id, FinishReason reason);
  // Ends every live sequence `match` selects with `reason` (deadlines, shutdown).
  void AbortIf(const std::function<bool(const Sequence&)>& match, FinishReason reason);

  bool has_work() const { return !running_.empty() || !waiting_.empty(); }
  int running_count() const { return static_cast<int>(running_.size()); }
  int waiting_count() const { return static_cast<int>(waiting_.size()); }
  int64_t preemptions_total() const { return preemptions_total_; }
  int64_t finished_total() const { return finished_total_; }
  // The running sequences, in admission order (their outputs of the step are delivered).
  std::span<const std::unique_ptr<Sequence>> running() const { return running_; }

  // Plans the next step; empty when nothing can run. Valid until the next Schedule.
  const StepPlan& Schedule(EngineClock::time_point now);
  // Applies the backend's output for the last plan: `step` is Execute's status (a failed step
  // fails every chunk), `out` its per-chunk results (its logits are masked in place to sample).
  void Update(const absl::Status& step, StepOutput* out);

  // Sequences finished since the last call, their last output ready to deliver.
  std::vector<std::unique_ptr<Sequence>> TakeFinished();
  Dequeued TakeDequeued();

 private:
  void AddChunk(Sequence& s, int n);
  // Tokens of `s`'s prompt (or recompute) to run now; 0 when it must wait.
  int PrefillChunkSize(const Sequence& s, int budget, bool first_in_line) const;
  // Fills plan_ with decodes and prompt chunks within the token budget, admitting waiting
  // sequences unless `admit` is false.
  void PlanChunks(bool admit);
  // Grows every planned sequence's pages; the one the pool is short for, or null.
  Sequence* GrowPlanned();
  void Preempt(Sequence& s);
  // Samples `s`'s next token, hands it to the output processor, ends `s` on a stop rule.
  void SampleNext(Sequence& s, std::span<float> logits, EngineClock::time_point now);
  // Ends `s`: final output fields, KV stats, pages released. `detail` is the matched stop (kStop)
  // or the error message (kError).
  void Finish(Sequence& s, FinishReason reason, std::string detail = {});
  // Moves finished sequences out of running_ / waiting_ into finished_.
  void RemoveFinished();
  void CountDequeued(Sequence& s, EngineClock::time_point now);

  const ModelConfig& config_;
  KvCacheManager& kv_;
  const SchedulerOptions& options_;
  const OutputProcessor& output_;
  std::deque<std::unique_ptr<Sequence>> waiting_;    // FCFS; preempted ones go back to the front
  std::vector<std::unique_ptr<Sequence>> running_;   // admission order
  std::vector<std::unique_ptr<Sequence>> finished_;  // until taken for delivery
  StepPlan plan_;
  std::vector<float> raw_logits_;  // a chunk's unmasked logits, for logprobs
  Dequeued dequeued_;
  int64_t preemptions_total_ = 0;
  int64_t finished_total_ = 0;
};

}  // namespace kvserve
