#include "engine/kv/snapkv_policy.h"

#include <algorithm>

#include "engine/kv/snapkv_selection.h"

namespace kvserve {

SnapKvPolicy::SnapKvPolicy(const KvPolicyOptions& options, const ModelConfig& config)
    : options_(options), n_heads_(config.n_heads), n_kv_heads_(config.n_kv_heads) {}

int SnapKvPolicy::ScoreWindow(int, int n) const {
  return n > SnapKvBudget(options_, n) ? options_.window : 0;
}

KvPolicy::LayerDecision SnapKvPolicy::OnPromptLayer(int, int n,
                                                    std::span<const float> window_scores) {
  const int budget = SnapKvBudget(options_, n);
  const size_t expected = static_cast<size_t>(n_heads_) * std::max(0, n - options_.window);
  if (n <= budget || window_scores.size() != expected) return {};
  return {.retain = SnapKvRetain(window_scores, n, n_heads_, n_kv_heads_, options_, budget)};
}

}  // namespace kvserve
