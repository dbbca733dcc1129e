#include "kernels/cpu_reference/attend_over_cache.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvserve::kernels::reference {

void AttendOverCache(const Bf16* q, const PagedKvCache& cache, int seq, int kv_head, int visible,
                     float scale, Bf16* out) {
  const int head_dim = cache.layout.head_dim;
  std::vector<double> scores(std::max(visible, 0));
  double max_score = -INFINITY;
  for (int j = 0; j < visible; ++j) {
    const Bf16* k = cache.pages + cache.KeyOffset(seq, j, kv_head);
    double dot = 0.0;
    for (int d = 0; d < head_dim; ++d) dot += double{ToFloat(q[d])} * ToFloat(k[d]);
    scores[j] = dot * scale;
    max_score = std::max(max_score, scores[j]);
  }
  std::vector<double> acc(head_dim, 0.0);
  double sum = 0.0;
  for (int j = 0; j < visible; ++j) {
    const double p = std::exp(scores[j] - max_score);
    sum += p;
    const Bf16* v = cache.pages + cache.ValueOffset(seq, j, kv_head);
    for (int d = 0; d < head_dim; ++d) acc[d] += p * ToFloat(v[d]);
  }
  for (int d = 0; d < head_dim; ++d) {
    out[d] = ToBf16(sum > 0.0 ? static_cast<float>(acc[d] / sum) : 0.0f);
  }
}

}  // namespace kvserve::kernels::reference
