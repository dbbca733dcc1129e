#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/sampling/sampling_params.h"

namespace kvserve {

using EngineClock = std::chrono::steady_clock;

// A request as the engine sees it: validated token ids and settings.
struct EngineRequest {
  std::string id;               // unique among live requests
  std::vector<int32_t> prompt;  // used as given (BOS already added, if wanted)
  int max_new_tokens = 16;
  // Before this many tokens EOS and stop ids are masked out of sampling (vLLM's min_tokens) and
  // stop strings are not matched.
  int min_new_tokens = 0;
  SamplingParams sampling;
  std::vector<std::string> stop;        // stop strings (need a tokenizer); not part of the text
  std::vector<int32_t> stop_token_ids;  // besides EOS
  bool ignore_eos = false;
  int logprobs = 0;  // top-n logprobs per token (0: none; the chosen token's always)
  std::optional<KvPolicyOptions> kv_policy;  // absent: the scheduler's default policy
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
  double queue_ms = 0;        // submitted to first scheduled
  double prefill_ms = 0;      // first scheduled to the prompt's last chunk done
  double ttft_ms = 0;         // submitted to the first token
  double decode_ms = 0;       // first token to the last
  double e2e_ms = 0;          // submitted to finished (to this output, before the last)
  int completion_tokens = 0;  // tokens generated so far: what decode_tokens_per_s counts
  // Decode rate over the tokens after the first (the first comes from prefill).
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

}  // namespace kvserve
