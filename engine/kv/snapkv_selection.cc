#include "engine/kv/snapkv_selection.h"

#include <algorithm>
#include <cmath>

namespace kvserve {

double RateAsDecimal(float rate) {
  // Rates are written with a few decimals; 1e7 keeps every digit a float carries.
  return std::round(static_cast<double>(rate) * 1e7) / 1e7;
}

int FloorRate(int n, float rate) { return static_cast<int>(std::floor(n * RateAsDecimal(rate))); }

int MinPromptBudget(const KvPolicyOptions& options) { return options.window + 1; }

int SnapKvBudget(const KvPolicyOptions& options, int n) {
  const int budget = options.budget > 0 ? options.budget : FloorRate(n, options.retain_rate);
  return std::max(budget, MinPromptBudget(options));
}

std::vector<float> KvHeadWindowScores(std::span<const float> window_scores, int n, int n_heads,
                                      int n_kv_heads, const KvPolicyOptions& options) {
  const size_t len = static_cast<size_t>(std::max(0, n - options.window));
  std::vector<float> pooled(static_cast<size_t>(n_heads) * len);
  for (int h = 0; h < n_heads; ++h) {
    PoolScores(window_scores.subspan(h * len, len), options.pool, options.pool_kernel,
               std::span(pooled).subspan(h * len, len));
  }
  std::vector<float> out(static_cast<size_t>(n_kv_heads) * len);
  GroupSumScores(pooled.data(), n_heads, n_kv_heads, static_cast<int>(len), out.data());
  return out;
}

std::vector<std::vector<int32_t>> SnapKvRetain(std::span<const float> window_scores, int n,
                                               int n_heads, int n_kv_heads,
                                               const KvPolicyOptions& options, int budget) {
  const std::vector<float> scores =
      KvHeadWindowScores(window_scores, n, n_heads, n_kv_heads, options);
  return SelectPerKvHead(scores.data(), n_kv_heads, n, options.window, budget);
}

}  // namespace kvserve
