#include "kernels/cpu_reference/prefill_attention.h"

#include <algorithm>
#include <cstddef>

#include "kernels/cpu_reference/attend_over_cache.h"

namespace kvserve::kernels::reference {

void PrefillAttention(const PrefillAttentionParams& p) {
  const int head_dim = p.cache.layout.head_dim;
  const int group = p.n_heads / p.cache.layout.n_kv_heads;
  for (int seq = 0; seq < p.batch.num_seqs; ++seq) {
    for (int row = p.batch.cu_seqlens[seq]; row < p.batch.cu_seqlens[seq + 1]; ++row) {
      const int visible = std::min(p.kv_lens[seq], p.batch.cache_positions[row] + 1);
      for (int h = 0; h < p.n_heads; ++h) {
        AttendOverCache(p.q + static_cast<size_t>(row) * p.q_row_stride + h * head_dim, p.cache,
                        seq, h / group, visible, p.scale,
                        p.out + static_cast<size_t>(row) * p.out_row_stride + h * head_dim);
      }
    }
  }
}

}  // namespace kvserve::kernels::reference
