#include "engine/runtime/cpu/window_scores.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvserve::cpu {

void WindowScores(const float* q, const float* const* head_keys, int n, int window,
                  const AttentionShape& shape, float* out) {
  const int d = shape.head_dim;
  const int group = shape.n_heads / shape.n_kv_heads;
  const int q_stride = shape.n_heads * d;
  const int prefix = n - window;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> p(n);
  for (int h = 0; h < shape.n_heads; ++h) {
    float* row_out = out + static_cast<size_t>(h) * prefix;
    std::fill(row_out, row_out + prefix, 0.0f);
    const float* k = head_keys[h / group];
    for (int i = 0; i < window; ++i) {
      const int token = prefix + i;
      const int visible = token + 1;  // the prefix and window keys up to this query
      const float* qi = q + static_cast<size_t>(token) * q_stride + static_cast<size_t>(h) * d;
      AttentionProbabilities(qi, k, visible, d, scale, p.data());
      for (int j = 0; j < prefix; ++j) row_out[j] += p[j];
    }
  }
}

}  // namespace kvserve::cpu
