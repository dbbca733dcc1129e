#include "kernels/cpu_reference/sparse_decode_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvserve::kernels::reference {

void SparseDecodeAttention(const SparseDecodeAttentionParams& p) {
  const PagedKvLayout& l = p.layout;
  const int d = l.head_dim;
  const int group = p.n_heads / l.n_kv_heads;
  std::vector<double> scores, acc(d);
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    for (int head = 0; head < p.n_heads; ++head) {
      const int kv_head = head / group;
      const size_t unit = static_cast<size_t>(seq) * l.n_kv_heads + kv_head;
      const Bf16* q = p.q + static_cast<size_t>(seq) * p.q_row_stride + head * d;
      const int count = p.lists.counts[unit];
      scores.clear();
      double max_score = -INFINITY;
      for (int e = 0; e < count; ++e) {
        const int32_t page = p.lists.pages[unit * p.lists.capacity + e];
        for (int r = 0; r < p.lists.rows[unit * p.lists.capacity + e]; ++r) {
          const Bf16* k = p.pages + l.RowOffset(page, kv_head, 0, r);
          double dot = 0.0;
          for (int c = 0; c < d; ++c) dot += double{ToFloat(q[c])} * ToFloat(k[c]);
          scores.push_back(dot * p.scale);
          max_score = std::max(max_score, scores.back());
        }
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      double sum = 0.0;
      size_t j = 0;
      for (int e = 0; e < count; ++e) {
        const int32_t page = p.lists.pages[unit * p.lists.capacity + e];
        for (int r = 0; r < p.lists.rows[unit * p.lists.capacity + e]; ++r, ++j) {
          const double w = std::exp(scores[j] - max_score);
          sum += w;
          const Bf16* v = p.pages + l.RowOffset(page, kv_head, 1, r);
          for (int c = 0; c < d; ++c) acc[c] += w * ToFloat(v[c]);
        }
      }
      Bf16* out = p.out + static_cast<size_t>(seq) * p.out_row_stride + head * d;
      for (int c = 0; c < d; ++c) {
        out[c] = ToBf16(sum > 0.0 ? static_cast<float>(acc[c] / sum) : 0.0f);
      }
    }
  }
}

}  // namespace kvserve::kernels::reference
