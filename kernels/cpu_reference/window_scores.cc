#include "kernels/cpu_reference/window_scores.h"

#include <cmath>
#include <cstddef>
#include <vector>

namespace kvserve::kernels::reference {

void WindowScores(const WindowScoresParams& p) {
  const ScoredPrefixes& b = p.prefixes;
  const int head_dim = p.cache.layout.head_dim;
  const int group = p.n_heads / p.cache.layout.n_kv_heads;
  std::vector<double> logits;
  for (int seq = 0; seq < b.num_seqs; ++seq) {
    const int n = b.kv_lens[seq];
    const int window = b.windows[seq];
    if (window == 0) continue;
    const int prefix = n - window;
    const int first_window_row = p.cu_seqlens[seq + 1] - window;
    std::vector<float> probs(n);
    logits.resize(n);
    for (int h = 0; h < p.n_heads; ++h) {
      const int kv_head = h / group;
      auto softmax = [&](int token, int visible, float* out) {
        const Bf16* q = p.q +
                        static_cast<size_t>(first_window_row + token - prefix) * p.q_row_stride +
                        static_cast<size_t>(h) * head_dim;
        double max_logit = -INFINITY;
        for (int j = 0; j < visible; ++j) {
          const Bf16* k = p.cache.pages + p.cache.KeyOffset(seq, j, kv_head);
          double dot = 0.0;
          for (int d = 0; d < head_dim; ++d) dot += double{ToFloat(q[d])} * ToFloat(k[d]);
          logits[j] = dot * p.scale;
          max_logit = std::max(max_logit, logits[j]);
        }
        double sum = 0.0;
        for (int j = 0; j < visible; ++j) sum += (logits[j] = std::exp(logits[j] - max_logit));
        for (int j = 0; j < visible; ++j) out[j] = static_cast<float>(logits[j] / sum);
      };
      HeadWindowScores(n, window, softmax, probs.data(),
                       p.scores + static_cast<size_t>(b.cu_prefix[seq]) * p.n_heads +
                           static_cast<size_t>(h) * prefix);
    }
  }
}

}  // namespace kvserve::kernels::reference
