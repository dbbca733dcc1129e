#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/scheduler/engine_request.h"

namespace kvserve {

struct Sequence;

// How a stop rule ended a request: the reason and the matched stop (string or id as text).
struct StopDecision {
  FinishReason reason;
  std::string matched;
};

// Turns each sampled token into the request's output (vLLM's OutputProcessor): stop ids and
// strings, incremental detokenization, logprobs. Rules, in order: EOS (unless ignore_eos), a stop
// token id, a stop string (text held back while it could still start one; the text ends before
// it), max_new_tokens; none of the first three before min_new_tokens.
class OutputProcessor {
 public:
  explicit OutputProcessor(int32_t eos_id) : eos_id_(eos_id) {}

  // Before min_new_tokens, EOS and stop ids are masked out of sampling, as vLLM's min_tokens does.
  void MaskEarlyStops(const Sequence& s, std::span<float> logits) const;

  // Adds `token` (sampled from `raw_logits`, the unmasked logits) to `s`'s output: its logprobs
  // when asked, its text; the stop rule that ends the request, if any.
  std::optional<StopDecision> Accept(Sequence& s, int32_t token,
                                     std::span<const float> raw_logits) const;

  // At the end of `s` (for `reason`): releases the text held back for a stop string (unless one
  // matched) and what the detokenizer still holds.
  void Flush(Sequence& s, FinishReason reason) const;

 private:
  int32_t eos_id_;
};

}  // namespace kvserve
