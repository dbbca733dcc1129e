#include "engine/kv/fastkv_policy.h"

#include <algorithm>
#include <cmath>

#include "engine/kv/snapkv_selection.h"

namespace kvserve {

FastKvPolicy::FastKvPolicy(const KvPolicyOptions& options, const ModelConfig& config)
    : options_(options),
      config_(config),
      tsp_layer_(options.tsp_layer >= 0 ? options.tsp_layer
                                        : std::max(0, config.n_layers / 2 - 1)) {}

int FastKvPolicy::min_prompt_tokens() const { return 2 * MinPromptBudget(options_); }

int FastKvPolicy::TspKeep(int n) const {
  const int keep = options_.tsp_len > 0 ? options_.tsp_len : FloorRate(n, options_.tsp_rate);
  return std::max(keep, MinPromptBudget(options_));
}

int FastKvPolicy::LayerBudget(int layer, int n) const {
  const int prompt = PromptTokens(layer, n);
  if (layer <= tsp_layer_ || options_.budget > 0 || !tsp_fired_ || options_.tsp_len > 0) {
    return SnapKvBudget(options_, prompt);
  }
  // ⌊T · ρ / τ⌋: each post-TSP layer keeps about as many entries as a pre-TSP one (⌊N · ρ⌋).
  const double budget =
      tsp_tokens_ * RateAsDecimal(options_.retain_rate) / RateAsDecimal(options_.tsp_rate);
  return std::max(static_cast<int>(std::floor(budget)), MinPromptBudget(options_));
}

int FastKvPolicy::ScoreWindow(int layer, int n) const {
  if (PromptTokens(layer, n) < min_prompt_tokens()) return 0;
  const bool compress = n > LayerBudget(layer, n);
  const bool propagate = layer == tsp_layer_ && n > TspKeep(n);
  return compress || propagate ? options_.window : 0;
}

KvPolicy::LayerDecision FastKvPolicy::OnPromptLayer(int layer, int n,
                                                    std::span<const float> window_scores) {
  if (layer == 0) {
    prompt_tokens_ = n;
    tsp_tokens_ = n;
    tsp_fired_ = false;
    rows_.assign(config_.n_layers, LayerRows{n, n});
  }
  if (layer < 0 || layer >= config_.n_layers) return {};
  rows_[layer] = {n, n};
  const int window = options_.window;
  const size_t expected = static_cast<size_t>(config_.n_heads) * std::max(0, n - window);
  if (PromptTokens(layer, n) < min_prompt_tokens() || n <= window ||
      window_scores.size() != expected) {
    return {};
  }
  LayerDecision decision;
  if (const int budget = LayerBudget(layer, n); n > budget) {
    decision.retain =
        SnapKvRetain(window_scores, n, config_.n_heads, config_.n_kv_heads, options_, budget);
  }
  if (const int keep = TspKeep(n); layer == tsp_layer_ && n > keep) {
    const std::vector<float> scores =
        KvHeadWindowScores(window_scores, n, config_.n_heads, config_.n_kv_heads, options_);
    decision.propagate = SelectPropagatedTokens(scores.data(), config_.n_kv_heads, n, window, keep);
    tsp_tokens_ = keep;
    tsp_fired_ = true;
    rows_[layer].mlp = keep;
  }
  return decision;
}

KvStats FastKvPolicy::Stats(const SequenceKvCache& kv) const {
  KvStats stats = KvPolicy::Stats(kv);
  stats.tsp_tokens = tsp_tokens_;
  stats.prefill_flops_fraction = PrefillFlopsFraction(config_, rows_, prompt_tokens_);
  return stats;
}

}  // namespace kvserve
