#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/model/tokenizer.h"
#include "engine/runtime/backend.h"
#include "engine/sampling/sampling_params.h"

namespace kvserve {

using EngineClock = std::chrono::steady_clock;

// A request as the engine sees it: validated token ids and settings.
struct EngineRequest {
  std::string id;               // unique among live requests
  std::vector<int32_t> prompt;  // used as given (BOS already added, if wanted)
  int max_new_tokens = 16;
  int min_new_tokens = 0;  // EOS, stop ids and stop strings are ignored before this many
  SamplingParams sampling;
  std::vector<std::string> stop;        // stop strings (need a tokenizer); not part of the text
  std::vector<int32_t> stop_token_ids;  // besides EOS
  bool ignore_eos = false;
  int logprobs = 0;  // top-n logprobs per token (0: none; the chosen token's always)
  KvPolicyOptions kv_policy;
  std::optional<EngineClock::time_point> deadline;
};

enum class FinishReason { kEos, kMaxTokens, kStop, kCancelled, kDeadline, kError };
std::string_view FinishReasonName(FinishReason reason);  // "eos", "max_tokens", "stop", ...

struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

struct RequestTiming {
  double queue_ms = 0;    // submitted to first scheduled
  double prefill_ms = 0;  // first scheduled to the prompt's last chunk done
  double ttft_ms = 0;     // submitted to the first token
  double decode_ms = 0;   // first token to the last
  double e2e_ms = 0;      // submitted to finished
  double decode_tokens_per_s() const;
};

// What one engine step produced for one request: its new tokens (and text, when the model has a
// tokenizer), or the end of the request (finished set, every field below it filled).
struct SequenceOutput {
  std::string request_id;
  std::vector<int32_t> tokens;          // new since the previous output
  std::string text;                     // new text, never a broken UTF-8 sequence
  std::vector<TokenLogprobs> logprobs;  // one per new token when the request asked for them
  int prompt_tokens = 0;
  int completion_tokens = 0;  // cumulative
  bool finished = false;
  FinishReason finish_reason = FinishReason::kMaxTokens;
  std::string matched_stop;  // the stop string or stop token id (as text) that ended it
  std::string error;         // with kError
  RequestTiming timing;
  KvStats kv;
  int preemptions = 0;
};

// Called on the engine thread; must not block (the server queues and returns).
using OutputCallback = std::function<void(SequenceOutput&&)>;

struct SchedulerOptions {
  int max_batch_tokens = 2048;  // tokens per engine step: decodes first, then prefill chunks
  int max_running = 64;         // sequences in the running batch
  int max_queued_requests = 256;
  int64_t max_queued_prompt_tokens = 1 << 20;
  int page_size = 32;
  int64_t kv_cache_bytes = int64_t{2} << 30;  // the KV page pool's budget
  int32_t eos_id = -1;
  KvPolicyOptions default_kv_policy;
};

struct SchedulerStatus {
  int running = 0;
  int waiting = 0;
  int64_t pages_used = 0;
  int64_t pages_total = 0;
  int page_size = 0;
  int64_t preemptions_total = 0;
  int64_t finished_total = 0;
  bool draining = false;
};

// Continuous batching on one engine thread (DESIGN.md § Data flow). Each step: take new and
// cancelled requests, schedule running decodes first and then prompt chunks (FCFS) within the
// token budget, grow each sequence's KV pages (preempting the newest running sequence, to be
// recomputed, when the pool is short), run the backend, sample, apply stop rules, emit outputs.
// Submit, Cancel and status are thread-safe.
class Scheduler {
 public:
  // `tokenizer` may be null (synthetic models: no text, no stop strings). Both must outlive this.
  Scheduler(Backend& backend, const Tokenizer* tokenizer, SchedulerOptions options);
  ~Scheduler();  // stops the engine thread; unfinished requests end as kCancelled

  // Capacity the KV budget gives: sequences that fit at the model's full context.
  double max_concurrency_at_full_context() const;
  const SchedulerOptions& options() const { return options_; }

  // Queues a request. InvalidArgument naming the field (prompt empty or out of vocabulary, prompt +
  // max_new_tokens beyond the context, sampling, kv policy, duplicate id); ResourceExhausted when
  // the queue is full (requests or prompt tokens) or the request could never fit in the KV pool;
  // Unavailable while draining. `on_output` receives every output of the request, the last one
  // with finished set, exactly once per request that was accepted.
  absl::Status Submit(EngineRequest request, OutputCallback on_output);

  // Ends a queued or running request within one step, freeing its pages; its last output has
  // `reason` (kCancelled or kDeadline). False when no live request has that id.
  bool Cancel(const std::string& request_id, FinishReason reason = FinishReason::kCancelled);

  SchedulerStatus status() const;

  // Runs steps on a background engine thread until Stop.
  void Start();
  // Stops admitting (Submit answers Unavailable); running and queued requests go on.
  void BeginDrain();
  // Cancels everything left (kCancelled), then joins the engine thread.
  void Stop();
  // Without Start: runs steps on the calling thread until no request is left (offline use).
  void RunUntilIdle();

 private:
  struct Sequence;
  struct Command;
  bool Step();  // one engine step; false when idle

  Backend& backend_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  PagePool pool_;
  // Shared with other threads under mu_.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> incoming_;
  std::vector<std::pair<std::string, FinishReason>> cancels_;
  // Engine-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::thread engine_;
  bool stop_ = false;
  SchedulerStatus status_;  // published under mu_ after each step
};

}  // namespace kvserve
