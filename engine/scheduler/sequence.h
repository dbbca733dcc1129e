#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/kv/decode_page_lists.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/kv/prompt_compression.h"
#include "engine/model/stream_detokenizer.h"
#include "engine/model/tokenizer.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/token_history.h"
#include "engine/scheduler/engine_request.h"
#include "engine/scheduler/stop_matcher.h"

namespace kvserve {

// Where a sequence is in its life (nano-vllm's SequenceStatus). A preempted sequence goes back to
// kWaiting and recomputes; kFinished is final.
enum class SequenceState {
  kWaiting,     // queued: nothing of it is computed
  kPrefilling,  // running its prompt (or recompute) in chunks
  kDecoding,    // its prompt is done: one token per step from now on
  kFinished,    // ended: its output is being delivered, its pages are gone
};

// One request inside the engine: its tokens, KV cache and policy, sampling and text state, and
// progress. A preempted sequence loses only its cache: it recomputes `tokens` and goes on with the
// same sampler, history and detokenizer, so its output stream continues seamlessly.
struct Sequence {
  Sequence(EngineRequest request, OutputCallback on_output, const Tokenizer* tokenizer);

  int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
  bool finished() const { return state == SequenceState::kFinished; }
  // Timing so far; `now` stands for the end of the request.
  RequestTiming Timing(EngineClock::time_point now) const;

  EngineRequest request;  // its prompt moved into `tokens`
  OutputCallback on_output;
  uint64_t arrival = 0;  // submission order: the largest is the newest
  int prompt_len = 0;
  std::vector<int32_t> tokens;  // the prompt, then every generated token
  // Leading `tokens` whose K/V the cache holds, a logical count (a policy may keep fewer rows).
  int computed = 0;
  SequenceState state = SequenceState::kWaiting;
  int preemptions = 0;

  // Its page tables and policy, from the KvCacheManager once the engine admitted it (null before,
  // or when that failed).
  std::unique_ptr<SequenceKv> kv;
  Sampler sampler;
  TokenHistory history;
  std::optional<StreamDetokenizer> detokenizer;  // with a tokenizer
  StopMatcher stops;

  std::vector<int32_t> positions;     // scratch: the positions of this step's chunk
  PromptCompressionPlan compression;  // this step's plan for a whole-prompt chunk
  DecodePageLists decode_pages;       // this step's sparse decode pages (tiered policies)
  SequenceOutput out;                 // what this step produced, handed out after it

  EngineClock::time_point submitted;
  std::optional<EngineClock::time_point> first_scheduled;
  std::optional<EngineClock::time_point> prefill_done;
  std::optional<EngineClock::time_point> first_token;
  EngineClock::time_point last_token;
};

}  // namespace kvserve
