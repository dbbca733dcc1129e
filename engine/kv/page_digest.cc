#include "engine/kv/page_digest.h"

#include <algorithm>
#include <cmath>

namespace kvserve {

void BuildPageDigest(const float* keys, int rows, int head_dim, DigestKind kind, float* hi,
                     float* lo) {
  for (int c = 0; c < head_dim; ++c) {
    float max = keys[c], min = keys[c];
    for (int r = 1; r < rows; ++r) {
      const float k = keys[static_cast<size_t>(r) * head_dim + c];
      max = std::max(max, k);
      min = std::min(min, k);
    }
    if (kind == DigestKind::kMinMax) {
      hi[c] = max;
      lo[c] = min;
      continue;
    }
    const float center = 0.5f * (max + min);
    float mad = 0.0f;
    for (int r = 0; r < rows; ++r)
      mad += std::abs(keys[static_cast<size_t>(r) * head_dim + c] - center);
    mad /= static_cast<float>(rows);
    hi[c] = center + mad;
    lo[c] = center - mad;
  }
}

float PageUpperBound(const float* q, const float* hi, const float* lo, int head_dim) {
  float s = 0.0f;
  for (int c = 0; c < head_dim; ++c) s += std::max(q[c] * hi[c], q[c] * lo[c]);
  return s;
}

}  // namespace kvserve
