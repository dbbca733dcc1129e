#pragma once

#include <cstdint>
#include <optional>

namespace kvserve {

// Per-request sampling settings with vLLM's semantics.
struct SamplingParams {
  float temperature = 0.0f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // > 1 discourages tokens seen in prompt or output
  float presence_penalty = 0.0f;    // subtracted once from logits of tokens seen in the output
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the output
  std::optional<uint64_t> seed;     // same seed, same output
};

}  // namespace kvserve
