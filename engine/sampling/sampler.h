#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling/candidate_filters.h"
#include "engine/sampling/sampling_params.h"
#include "engine/sampling/token_history.h"

namespace kvserve {

struct SampleResult {
  int32_t token = 0;
  // log_softmax of the raw logits (before penalties and temperature) at `token`: vLLM's default.
  float logprob = 0.0f;
};

// Picks the next token of one sequence with vLLM's semantics, in vLLM's order:
// penalties → temperature (0 = greedy) → top-k → top-p → min-p → draw from what is left,
// renormalized. One Sampler per sequence: it owns the sequence's random stream, so a seeded request
// reproduces its output whatever else is batched with it.
class Sampler {
 public:
  // `params` must have passed Validate().
  explicit Sampler(const SamplingParams& params);

  // InvalidArgument carrying the offending field (field_violation.h), e.g. path "top_p", problem
  // "must be in (0, 1], got 1.5".
  // top_k larger than the vocabulary is allowed and means "off", as in vLLM.
  static absl::Status Validate(const SamplingParams& params, int vocab_size);

  // The next token. On return `logits` holds the penalized logits (temperature is not folded in).
  // Greedy (temperature 0) is the argmax with ties to the lowest id and never touches the rng.
  int32_t Sample(std::span<float> logits, const TokenHistory& history);

  // As Sample, plus the chosen token's raw log-probability; costs an extra O(vocab) copy.
  SampleResult SampleWithLogprob(std::span<float> logits, const TokenHistory& history);

  const SamplingParams& params() const { return params_; }

 private:
  int32_t SampleRandom(std::span<const float> logits);
  // Draws one of candidates_ in proportion to its weight.
  int32_t Draw();
  // Uniform double in [0, 1) from the top 53 bits of one rng output.
  double NextUniform();

  SamplingParams params_;
  // mt19937_64: its output for a given seed is fixed by the C++ standard (unlike the std
  // distributions), so with our own bits→double conversion a seed reproduces on any toolchain.
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;  // scratch, reused across steps to avoid reallocating
  std::vector<float> raw_logits_;      // scratch for SampleWithLogprob
};

}  // namespace kvserve
