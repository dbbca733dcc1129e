#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace kvserve {

// Log-probabilities of the raw model distribution (log-softmax of the logits as the model produced
// them, before penalties and temperature), which is what vLLM reports by default.

// log(sum(exp(logits))), computed stably in double. -inf when every logit is -inf (or empty).
double LogSumExp(std::span<const float> logits);

// log_softmax(logits)[token].
float LogSoftmaxAt(std::span<const float> logits, int32_t token);

// The n most likely ids with their log-probabilities, most likely first; ties go to the lower id.
// n is clamped to [0, logits.size()].
std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, int n);

}  // namespace kvserve
