#include "kernels/cpu_reference/score_pooling.h"

#include <cstddef>
#include <vector>

#include "kernels/cpu_reference/token_selection.h"

namespace kvserve::kernels::reference {

void ScorePoolingByKvHead(const ScorePoolingParams& p) {
  const ScoredPrefixes& b = p.prefixes;
  for (int seq = 0; seq < b.num_seqs; ++seq) {
    if (b.windows[seq] == 0) continue;
    const int begin = b.cu_prefix[seq];
    const size_t len = static_cast<size_t>(b.cu_prefix[seq + 1] - begin);
    const float* heads = p.head_scores + static_cast<size_t>(begin) * p.n_heads;
    std::vector<float> pooled(p.n_heads * len);
    for (int h = 0; h < p.n_heads; ++h) {
      PoolScores({heads + h * len, len}, p.pooling, p.kernel, {pooled.data() + h * len, len});
    }
    float* kv = p.kv_scores + static_cast<size_t>(begin) * p.n_kv_heads;
    GroupSumScores(pooled.data(), p.n_heads, p.n_kv_heads, static_cast<int>(len), kv);
    if (p.totals != nullptr) {
      SumOverKvHeads(kv, p.n_kv_heads, static_cast<int>(len), p.totals + begin);
    }
  }
}

}  // namespace kvserve::kernels::reference
