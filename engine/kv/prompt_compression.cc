#include "engine/kv/prompt_compression.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvserve {

int PromptCompressionPlan::tsp_layer() const {
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].propagate) return static_cast<int>(l);
  }
  return -1;
}

int PromptCompressionPlan::RowsAt(int layer) const {
  const int tsp = tsp_layer();
  return tsp >= 0 && layer > tsp ? tsp_keep : prompt_tokens;
}

std::vector<LayerRows> PromptCompressionPlan::ExecutedRows() const {
  std::vector<LayerRows> rows;
  const int tsp = tsp_layer();
  for (int l = 0; l < static_cast<int>(layers.size()); ++l) {
    const int attention = RowsAt(l);
    rows.push_back({attention, l == tsp ? tsp_keep : attention});
  }
  return rows;
}

std::vector<float> PooledKvHeadScores(std::span<const float> window_scores, int prefix, int n_heads,
                                      int n_kv_heads, ScorePooling pool, int pool_kernel) {
  const size_t len = static_cast<size_t>(std::max(0, prefix));
  std::vector<float> pooled(static_cast<size_t>(n_heads) * len);
  for (int h = 0; h < n_heads; ++h) {
    PoolScores(window_scores.subspan(h * len, len), pool, pool_kernel,
               std::span(pooled).subspan(h * len, len));
  }
  std::vector<float> out(static_cast<size_t>(n_kv_heads) * len);
  GroupSumScores(pooled.data(), n_heads, n_kv_heads, static_cast<int>(len), out.data());
  return out;
}

absl::StatusOr<LayerSelection> SelectPromptRows(const PromptCompressionPlan& plan, int layer, int n,
                                                std::span<const float> window_scores, int n_heads,
                                                int n_kv_heads) {
  LayerSelection out;
  if (layer < 0 || layer >= static_cast<int>(plan.layers.size())) return out;
  const LayerCompression& lc = plan.layers[layer];
  if (lc.window == 0) return out;
  const int prefix = n - lc.window;
  if (prefix < 1 || window_scores.size() != static_cast<size_t>(n_heads) * prefix) {
    return absl::InvalidArgumentError(absl::StrCat("prompt compression at layer ", layer,
                                                   ": window ", lc.window, " over ", n,
                                                   " rows with ", window_scores.size(), " scores"));
  }
  const std::vector<float> kv_scores =
      PooledKvHeadScores(window_scores, prefix, n_heads, n_kv_heads, plan.pool, plan.pool_kernel);
  if (lc.keep > 0 && lc.keep < n) {
    // keep_unselected: every prefix row by score, best first (the ones FastKV keeps lead and fill
    // the first pages), then the window, which stays last: the newest prompt rows are the tier's
    // recent pages, as the CUDA backend orders them.
    out.retain = SelectPerKvHead(kv_scores.data(), n_kv_heads, n, lc.window,
                                 plan.keep_unselected ? n : lc.keep);
  }
  if (lc.propagate && plan.tsp_keep < n) {
    out.propagate =
        SelectPropagatedTokens(kv_scores.data(), n_kv_heads, n, lc.window, plan.tsp_keep);
  }
  return out;
}

}  // namespace kvserve
