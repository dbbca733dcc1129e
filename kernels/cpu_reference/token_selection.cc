#include "kernels/cpu_reference/token_selection.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace kvserve::kernels::reference {
namespace {

// Indices of the `k` highest scores, ties to the lower index, in that rank order.
std::vector<int32_t> TopK(std::span<const float> scores, int k) {
  std::vector<int32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp(k, 0, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

}  // namespace

void PoolScores(std::span<const float> in, ScorePooling pooling, int kernel, std::span<float> out) {
  const int len = static_cast<int>(in.size());
  const int half = kernel / 2;
  for (int j = 0; j < len; ++j) {
    const int lo = std::max(0, j - half);
    const int hi = std::min(len - 1, j + half);
    if (pooling == ScorePooling::kMax) {
      float m = -std::numeric_limits<float>::infinity();
      for (int t = lo; t <= hi; ++t) m = std::max(m, in[t]);
      out[j] = m;
    } else {
      float sum = 0.0f;
      for (int t = lo; t <= hi; ++t) sum += in[t];
      out[j] = sum / static_cast<float>(kernel);
    }
  }
}

void GroupSumScores(const float* head_scores, int n_heads, int n_kv_heads, int len, float* out) {
  const int group = n_heads / n_kv_heads;
  std::fill(out, out + static_cast<size_t>(n_kv_heads) * len, 0.0f);
  for (int h = 0; h < n_heads; ++h) {
    const float* src = head_scores + static_cast<size_t>(h) * len;
    float* dst = out + static_cast<size_t>(h / group) * len;
    for (int j = 0; j < len; ++j) dst[j] += src[j];
  }
}

void SumOverKvHeads(const float* kv_scores, int n_kv_heads, int len, float* out) {
  std::fill(out, out + len, 0.0f);
  for (int g = 0; g < n_kv_heads; ++g) {
    for (int j = 0; j < len; ++j) out[j] += kv_scores[static_cast<size_t>(g) * len + j];
  }
}

std::vector<std::vector<int32_t>> SelectPerKvHead(const float* kv_scores, int n_kv_heads, int n,
                                                  int window, int budget) {
  window = std::clamp(window, 0, n);
  const int prefix = n - window;
  const int keep = KeptRowCount(n, window, budget) - window;
  std::vector<std::vector<int32_t>> out(n_kv_heads);
  for (int g = 0; g < n_kv_heads; ++g) {
    out[g] = TopK({kv_scores + static_cast<size_t>(g) * prefix, static_cast<size_t>(prefix)}, keep);
    for (int j = prefix; j < n; ++j) out[g].push_back(j);
  }
  return out;
}

std::vector<int32_t> SelectPropagatedTokens(const float* kv_scores, int n_kv_heads, int n,
                                            int window, int keep) {
  window = std::clamp(window, 0, n);
  std::vector<float> total(n - window);
  SumOverKvHeads(kv_scores, n_kv_heads, n - window, total.data());
  return SelectPropagatedByTotal(total.data(), n, window, keep);
}

std::vector<int32_t> SelectPropagatedByTotal(const float* totals, int n, int window, int keep) {
  window = std::clamp(window, 0, n);
  const int prefix = n - window;
  std::vector<int32_t> idx =
      TopK({totals, static_cast<size_t>(prefix)}, KeptRowCount(n, window, keep) - window);
  std::sort(idx.begin(), idx.end());
  for (int j = prefix; j < n; ++j) idx.push_back(j);
  return idx;
}

}  // namespace kvserve::kernels::reference
