#include "engine/sampling/penalties.h"

#include <cstddef>
#include <cstdint>

namespace kvserve {

bool PenaltiesAreNeutral(const SamplingParams& params) {
  return params.repetition_penalty == 1.0f && params.presence_penalty == 0.0f &&
         params.frequency_penalty == 0.0f;
}

void ApplyPenalties(std::span<float> logits, const TokenHistory& history,
                    const SamplingParams& params) {
  if (PenaltiesAreNeutral(params)) return;
  const float rep = params.repetition_penalty;
  for (const auto& [token, entry] : history.entries()) {
    if (token < 0 || static_cast<size_t>(token) >= logits.size()) continue;
    float& logit = logits[static_cast<size_t>(token)];
    // Every entry is in the prompt or the output, so the repetition penalty applies to all.
    logit = logit > 0.0f ? logit / rep : logit * rep;
    if (entry.output_count > 0) {
      logit -= params.frequency_penalty * static_cast<float>(entry.output_count);
      logit -= params.presence_penalty;
    }
  }
}

}  // namespace kvserve
