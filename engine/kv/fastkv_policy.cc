#include "engine/kv/fastkv_policy.h"

#include <algorithm>
#include <cmath>

#include "engine/kv/snapkv_selection.h"

namespace kvserve {

FastKvPolicy::FastKvPolicy(const FastKvOptions& options, const ModelConfig& config)
    : options_(options),
      config_(config),
      tsp_layer_(options.tsp_layer >= 0 ? options.tsp_layer
                                        : std::max(0, config.n_layers / 2 - 1)) {}

int FastKvPolicy::min_prompt_tokens() const { return 2 * MinPromptBudget(options_); }

int FastKvPolicy::TspKeep(int n) const {
  const int keep = options_.tsp_len > 0 ? options_.tsp_len : FloorRate(n, options_.tsp_rate);
  return std::max(keep, MinPromptBudget(options_));
}

int FastKvPolicy::LayerBudget(int layer, int n, int tsp_keep, bool tsp_fired) const {
  if (layer <= tsp_layer_ || options_.budget > 0 || !tsp_fired || options_.tsp_len > 0) {
    return SnapKvBudget(options_, n);
  }
  // ⌊T · ρ / τ⌋: each post-TSP layer keeps about as many entries as a pre-TSP one (⌊N · ρ⌋).
  const double budget =
      tsp_keep * RateAsDecimal(options_.retain_rate) / RateAsDecimal(options_.tsp_rate);
  return std::max(static_cast<int>(std::floor(budget)), MinPromptBudget(options_));
}

PromptCompressionPlan FastKvPolicy::PlanPrompt(int n) {
  PromptCompressionPlan plan{
      .prompt_tokens = n, .pool = options_.pool, .pool_kernel = options_.pool_kernel};
  if (n >= min_prompt_tokens()) {
    const int keep = TspKeep(n);
    const bool fired = n > keep;
    plan.tsp_keep = fired ? keep : n;
    for (int l = 0; l < config_.n_layers; ++l) {
      // Layers past a TSP that fired see only its rows.
      const int rows = fired && l > tsp_layer_ ? keep : n;
      const int budget = LayerBudget(l, n, keep, fired);
      const bool compress = rows > budget;
      const bool propagate = l == tsp_layer_ && fired;
      plan.layers.push_back({.window = compress || propagate ? options_.window : 0,
                             .keep = compress ? budget : 0,
                             .propagate = propagate});
    }
  }
  last_plan_ = plan;
  return plan;
}

KvStats FastKvPolicy::Stats(const SequenceKvCache& kv) const {
  KvStats stats = KvPolicy::Stats(kv);
  if (last_plan_.empty()) {
    stats.tsp_tokens = last_plan_.prompt_tokens;
    return stats;
  }
  stats.tsp_tokens = last_plan_.tsp_keep;
  stats.prefill_flops_fraction =
      PrefillFlopsFraction(config_, last_plan_.ExecutedRows(), last_plan_.prompt_tokens);
  return stats;
}

}  // namespace kvserve
