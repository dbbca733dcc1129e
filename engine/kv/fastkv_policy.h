#pragma once

#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/kv/prefill_flops.h"

namespace kvserve {

// FastKV (research/fastkv.md §2-§5): layers 0..tsp_layer run on the whole prompt of N tokens; at
// tsp_layer, token-selective propagation (TSP) keeps T rows (⌊N · tsp_rate⌋, or the constant
// tsp_len; only when N > T), chosen by the window score summed over every head, sorted, window
// included, and only those rows run through the later layers, at their original positions. Every
// layer's cache keeps per KV head its top-(B_ℓ - window) rows plus the window, with
//   B_ℓ = ⌊N · retain_rate⌋ for ℓ <= tsp_layer and ⌊T · retain_rate / tsp_rate⌋ after, or
//   B_ℓ = the constant budget for every layer;
// a post-TSP layer whose TSP did not fire, or whose T is the constant tsp_len, uses ⌊N · ρ⌋.
//
// Guards against the reference's quirks (§10): every budget and T is at least window + 1 (short
// prompts never ask top-k for a negative count); TSP does not depend on whether a layer
// compresses; ρ > τ and a constant budget above a constant tsp_len are rejected by validation.
// Prompts of fewer than 2 · (window + 1) tokens run as `full` (no scoring, no TSP, nothing
// dropped): TSP would keep more than half of them anyway.
class FastKvPolicy : public KvPolicy {
 public:
  FastKvPolicy(const FastKvOptions& options, const ModelConfig& config);

  std::string_view name() const override { return "fastkv"; }
  bool needs_whole_prompt() const override { return true; }
  PromptCompressionPlan PlanPrompt(int n) override;
  // kept_tokens per layer; tsp_tokens: T, or N when TSP did not fire; prefill_flops_fraction from
  // the rows each layer ran on (prefill_flops.h), as the last plan set them.
  KvStats Stats(const SequenceKvCache& kv) const override;

  int tsp_layer() const { return tsp_layer_; }
  // The shortest prompt FastKV compresses; shorter ones run as full.
  int min_prompt_tokens() const;
  // T for a prompt of `n` tokens (TSP fires only when n > T).
  int TspKeep(int n) const;

 private:
  // A layer's budget B_ℓ for a prompt of `n` tokens, when TSP keeps `tsp_keep` (`tsp_fired`).
  int LayerBudget(int layer, int n, int tsp_keep, bool tsp_fired) const;

  FastKvOptions options_;
  ModelConfig config_;
  int tsp_layer_;
  PromptCompressionPlan last_plan_;  // what the last prompt ran with
};

}  // namespace kvserve
