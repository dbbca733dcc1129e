#include "kernels/cpu_reference/kv_append.h"

#include <cstddef>

namespace kvserve::kernels::reference {

void KvAppend(const Bf16* k, int k_row_stride, const Bf16* v, int v_row_stride,
              const RaggedBatch& batch, const PagedKvCache& cache) {
  const int head_dim = cache.layout.head_dim;
  for (int seq = 0; seq < batch.num_seqs; ++seq) {
    for (int row = batch.cu_seqlens[seq]; row < batch.cu_seqlens[seq + 1]; ++row) {
      const int slot = batch.cache_positions[row];
      for (int h = 0; h < cache.layout.n_kv_heads; ++h) {
        const Bf16* k_src = k + static_cast<size_t>(row) * k_row_stride + h * head_dim;
        const Bf16* v_src = v + static_cast<size_t>(row) * v_row_stride + h * head_dim;
        Bf16* k_dst = cache.pages + cache.KeyOffset(seq, slot, h);
        Bf16* v_dst = cache.pages + cache.ValueOffset(seq, slot, h);
        for (int d = 0; d < head_dim; ++d) {
          k_dst[d] = k_src[d];
          v_dst[d] = v_src[d];
        }
      }
    }
  }
}

}  // namespace kvserve::kernels::reference
