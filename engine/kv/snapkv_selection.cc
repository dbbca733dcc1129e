#include "engine/kv/snapkv_selection.h"

#include <algorithm>
#include <cmath>

#include "engine/kv/prompt_compression.h"

namespace kvserve {

double RateAsDecimal(float rate) {
  // Rates are written with a few decimals; 1e7 keeps every digit a float carries.
  return std::round(static_cast<double>(rate) * 1e7) / 1e7;
}

int FloorRate(int n, float rate) { return static_cast<int>(std::floor(n * RateAsDecimal(rate))); }

int MinPromptBudget(const PromptScoringOptions& options) { return options.window + 1; }

int SnapKvBudget(const SnapKvOptions& options, int n) {
  const int budget = options.budget > 0 ? options.budget : FloorRate(n, options.retain_rate);
  return std::max(budget, MinPromptBudget(options));
}

std::vector<float> KvHeadWindowScores(std::span<const float> window_scores, int n, int n_heads,
                                      int n_kv_heads, const PromptScoringOptions& options) {
  return PooledKvHeadScores(window_scores, n - options.window, n_heads, n_kv_heads, options.pool,
                            options.pool_kernel);
}

std::vector<std::vector<int32_t>> SnapKvRetain(std::span<const float> window_scores, int n,
                                               int n_heads, int n_kv_heads,
                                               const PromptScoringOptions& options, int budget) {
  const std::vector<float> scores =
      KvHeadWindowScores(window_scores, n, n_heads, n_kv_heads, options);
  return SelectPerKvHead(scores.data(), n_kv_heads, n, options.window, budget);
}

}  // namespace kvserve
