#include "kernels/cpu_reference/decode_attention.h"

#include <cstddef>

#include "kernels/cpu_reference/attend_over_cache.h"

namespace kvserve::kernels::reference {

void DecodeAttention(const DecodeAttentionParams& p) {
  const int head_dim = p.cache.layout.head_dim;
  const int group = p.n_heads / p.cache.layout.n_kv_heads;
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    for (int h = 0; h < p.n_heads; ++h) {
      AttendOverCache(p.q + static_cast<size_t>(seq) * p.q_row_stride + h * head_dim, p.cache, seq,
                      h / group, p.kv_lens[seq], p.scale,
                      p.out + static_cast<size_t>(seq) * p.out_row_stride + h * head_dim);
    }
  }
}

}  // namespace kvserve::kernels::reference
