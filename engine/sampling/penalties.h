#pragma once

#include <span>

#include "engine/sampling/sampling_params.h"
#include "engine/sampling/token_history.h"

namespace kvserve {

// True when the params change no logit, so the penalty pass can be skipped.
bool PenaltiesAreNeutral(const SamplingParams& params);

// Applies vLLM's penalties in place, in vLLM's order:
//  1. repetition (HF/CTRL style) to every id in the prompt or the output:
//     logit > 0 → logit / penalty, else logit * penalty;
//  2. frequency: logit -= frequency_penalty * (count in the output);
//  3. presence:  logit -= presence_penalty if the id occurs in the output.
// Ids outside the logits' range are ignored. Costs O(distinct ids in the history).
void ApplyPenalties(std::span<float> logits, const TokenHistory& history,
                    const SamplingParams& params);

}  // namespace kvserve
