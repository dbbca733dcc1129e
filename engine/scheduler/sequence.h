#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/model/stream_detokenizer.h"
#include "engine/model/tokenizer.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/token_history.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/stop_matcher.h"

namespace kvserve {

// One request inside the engine: its tokens, KV cache and policy, sampling and text state, and
// progress. A preempted sequence loses only its cache: it recomputes `tokens` and goes on with the
// same sampler, history and detokenizer, so its output stream continues seamlessly.
struct Sequence {
  Sequence(EngineRequest request, OutputCallback on_output, std::unique_ptr<KvPolicy> policy,
           PagePool& pool, int n_layers, const Tokenizer* tokenizer);

  int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
  // Timing so far; `now` stands for the end of the request.
  RequestTiming Timing(EngineClock::time_point now) const;

  EngineRequest request;  // its prompt moved into `tokens`
  OutputCallback on_output;
  uint64_t arrival = 0;  // submission order: the largest is the newest
  int prompt_len = 0;
  std::vector<int32_t> tokens;  // the prompt, then every generated token
  // Leading `tokens` whose K/V the cache holds, a logical count (a policy may keep fewer rows).
  int computed = 0;
  bool decoding = false;  // its prompt (or recompute) is done: one token per step from now on
  bool finished = false;
  int preemptions = 0;

  SequenceKvCache kv;
  std::unique_ptr<KvPolicy> policy;
  Sampler sampler;
  TokenHistory history;
  std::optional<StreamDetokenizer> detokenizer;  // with a tokenizer
  StopMatcher stops;

  std::vector<int32_t> positions;     // scratch: the positions of this step's chunk
  PromptCompressionPlan compression;  // this step's plan for a whole-prompt chunk
  SequenceOutput out;                 // what this step produced, handed out after it

  EngineClock::time_point submitted;
  EngineClock::time_point first_scheduled;  // epoch while never scheduled
  EngineClock::time_point prefill_done;
  EngineClock::time_point first_token;
  EngineClock::time_point last_token;
};

}  // namespace kvserve
