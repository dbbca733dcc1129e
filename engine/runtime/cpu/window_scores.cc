#include "engine/runtime/cpu/window_scores.h"

#include <cmath>
#include <vector>

#include "kernels/cpu_reference/window_scores.h"

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
    const float* k = head_keys[h / group];
    auto probabilities = [&](int token, int visible, float* probs) {
      const float* qi = q + static_cast<size_t>(token) * q_stride + static_cast<size_t>(h) * d;
      AttentionProbabilities(qi, k, visible, d, scale, probs);
    };
    kernels::reference::HeadWindowScores(n, window, probabilities, p.data(),
                                         out + static_cast<size_t>(h) * prefix);
  }
}

}  // namespace kvserve::cpu
