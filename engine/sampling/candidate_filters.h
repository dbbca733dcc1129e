#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kvserve {

// A token still in the running during one sampling step.
struct Candidate {
  float logit;   // after penalties (and temperature, once ComputeWeights has run)
  float weight;  // exp(logit - best logit): the unnormalized probability, exactly 1 for the best
  int32_t id;
};

// The truncations of sampling, in vLLM's semantics. Each works on an unordered candidate list and
// leaves the survivors in an unspecified order; probabilities are those of the current list,
// renormalized, so applying them in sequence composes as vLLM does. "More likely" means a higher
// logit, ties to the lower id, so every step is deterministic.

// The top_k most likely ids of `logits` (all of them when top_k is 0 or >= the vocabulary);
// -inf and NaN logits are never candidates. One pass with a k-sized heap: O(V) for small k.
// The order is the same at every positive temperature, so this runs on unscaled logits.
void SelectTopK(std::span<const float> logits, int top_k, std::vector<Candidate>& out);

// Divides the logits by the temperature and sets each weight to exp(logit - max logit).
// False when the scaled logits are not finite (a tiny temperature overflowed them, or there are
// none), where softmax degenerates and the caller should take the argmax instead.
bool ComputeWeights(std::vector<Candidate>& candidates, float inv_temperature);

// Keeps the shortest most-likely-first prefix whose probability mass reaches top_p: a token stays
// iff the mass ranked strictly above it is < top_p (vLLM's rule), so the best always stays.
void KeepTopP(std::vector<Candidate>& candidates, float top_p);

// Drops tokens whose probability is below min_p times the best one's; the best always stays.
void KeepMinP(std::vector<Candidate>& candidates, float min_p);

}  // namespace kvserve
