#include "engine/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace kvserve {

double LogSumExp(std::span<const float> logits) {
  float max = -std::numeric_limits<float>::infinity();
  for (float v : logits) max = std::max(max, v);
  if (!std::isfinite(max)) return max;  // all -inf (or empty), or a +inf logit dominates
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  return max + std::log(sum);
}

float LogSoftmaxAt(std::span<const float> logits, int32_t token) {
  return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(token)]) -
                            LogSumExp(logits));
}

std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, int n) {
  const size_t k = std::min(static_cast<size_t>(std::max(n, 0)), logits.size());
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  auto more_likely = [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)];
    const float lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  // Only the k winners need ordering: O(V + k log k).
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    more_likely);
  const double lse = LogSumExp(logits);
  std::vector<std::pair<int32_t, float>> top;
  top.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    top.emplace_back(
        ids[i], static_cast<float>(static_cast<double>(logits[static_cast<size_t>(ids[i])]) - lse));
  }
  return top;
}

}  // namespace kvserve
