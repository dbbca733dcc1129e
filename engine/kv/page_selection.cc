#include "engine/kv/page_selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kvserve {

void ScoreCandidatePages(const float* q_group, int group, const PageDigests& digests, int kv_head,
                         std::span<const int32_t> candidates, GroupAggregation aggregation,
                         std::span<float> scores) {
  const int d = digests.head_dim();
  const size_t n = candidates.size();
  std::fill(scores.begin(), scores.end(), 0.0f);
  // MeanS softmaxes q·k / sqrt(d), as attention does: unscaled, one 64-dim head's page bounds
  // differ by hundreds, and float exp made whole sets of pages exact zeros (ties by page index).
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> bounds(n);
  for (int g = 0; g < group; ++g) {
    const float* q = q_group + static_cast<size_t>(g) * d;
    double max = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
      bounds[i] = PageUpperBound(q, digests.hi(candidates[i], kv_head),
                                 digests.lo(candidates[i], kv_head), d);
      max = std::max(max, bounds[i]);
    }
    if (aggregation == GroupAggregation::kMax) {
      for (size_t i = 0; i < n; ++i) {
        const float b = static_cast<float>(bounds[i]);
        scores[i] = g == 0 ? b : std::max(scores[i], b);
      }
      continue;
    }
    if (aggregation == GroupAggregation::kMean) {
      for (size_t i = 0; i < n; ++i) scores[i] += static_cast<float>(bounds[i] / group);
      continue;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += (bounds[i] = std::exp((bounds[i] - max) * scale));
    for (size_t i = 0; i < n; ++i) scores[i] += static_cast<float>(bounds[i] / sum) / group;
  }
}

std::vector<int32_t> TopPages(std::span<const float> scores, std::span<const int32_t> candidates,
                              int k) {
  std::vector<int32_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t keep = std::min(order.size(), static_cast<size_t>(std::max(0, k)));
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int32_t a, int32_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : candidates[a] < candidates[b];
  });
  std::vector<int32_t> pages;
  pages.reserve(keep);
  for (size_t i = 0; i < keep; ++i) pages.push_back(candidates[order[i]]);
  std::sort(pages.begin(), pages.end());
  return pages;
}

}  // namespace kvserve
