#include "engine/scheduler/output_processor.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/sampling/logprobs.h"
#include "engine/scheduler/sequence.h"

namespace kvserve {

void OutputProcessor::MaskEarlyStops(const Sequence& s, std::span<float> logits) const {
  const EngineRequest& r = s.request;
  if (s.generated() + 1 >= r.min_new_tokens) return;
  constexpr float kNever = -std::numeric_limits<float>::infinity();
  if (!r.ignore_eos && eos_id_ >= 0 && eos_id_ < static_cast<int>(logits.size())) {
    logits[eos_id_] = kNever;
  }
  for (int32_t id : r.stop_token_ids) logits[id] = kNever;
}

std::optional<StopDecision> OutputProcessor::Accept(Sequence& s, int32_t token,
                                                    std::span<const float> raw_logits) const {
  const EngineRequest& r = s.request;
  s.out.tokens.push_back(token);
  if (r.logprobs > 0) {
    s.out.logprobs.push_back({.token = token,
                              .logprob = LogSoftmaxAt(raw_logits, token),
                              .top = TopLogprobs(raw_logits, r.logprobs)});
  }
  const int generated = s.generated();
  const bool may_stop = generated >= r.min_new_tokens;
  if (may_stop && !r.ignore_eos && token == eos_id_) {
    return StopDecision{FinishReason::kEos, ""};
  }
  if (may_stop && std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) !=
                      r.stop_token_ids.end()) {
    return StopDecision{FinishReason::kStop, absl::StrCat(token)};
  }
  // A stop string completed by the last allowed token still counts as the stop (as in vLLM).
  if (s.detokenizer && s.stops.Push(s.detokenizer->Push(token), may_stop, &s.out.text)) {
    return StopDecision{FinishReason::kStop, s.stops.matched()};
  }
  if (generated >= r.max_new_tokens) return StopDecision{FinishReason::kMaxTokens, ""};
  return std::nullopt;
}

void OutputProcessor::Flush(Sequence& s, FinishReason reason) const {
  const bool stop_string = reason == FinishReason::kStop && !s.stops.matched().empty();
  if (!s.detokenizer || stop_string) return;
  s.stops.Flush(&s.out.text);
  s.out.text += s.detokenizer->Flush();
}

}  // namespace kvserve
