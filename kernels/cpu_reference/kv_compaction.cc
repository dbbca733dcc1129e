#include "kernels/cpu_reference/kv_compaction.h"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace kvserve::kernels::reference {

void KvCompaction(const KvCompactionParams& p) {
  const PagedKvCache& c = p.cache;
  const int head_dim = c.layout.head_dim;
  std::vector<Bf16> rows;
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    const int keep = p.cu_kept[seq + 1] - p.cu_kept[seq];
    for (int g = 0; g < c.layout.n_kv_heads; ++g) {
      const int32_t* kept = p.kept_rows +
                            static_cast<size_t>(p.cu_kept[seq]) * c.layout.n_kv_heads +
                            static_cast<size_t>(g) * keep;
      rows.resize(static_cast<size_t>(keep) * 2 * head_dim);
      for (int r = 0; r < keep; ++r) {
        const Bf16* k = c.pages + c.KeyOffset(seq, kept[r], g);
        const Bf16* v = c.pages + c.ValueOffset(seq, kept[r], g);
        std::copy(k, k + head_dim, rows.begin() + (2 * r) * head_dim);
        std::copy(v, v + head_dim, rows.begin() + (2 * r + 1) * head_dim);
      }
      for (int r = 0; r < keep; ++r) {
        std::copy_n(rows.begin() + (2 * r) * head_dim, head_dim, c.pages + c.KeyOffset(seq, r, g));
        std::copy_n(rows.begin() + (2 * r + 1) * head_dim, head_dim,
                    c.pages + c.ValueOffset(seq, r, g));
      }
    }
  }
}

}  // namespace kvserve::kernels::reference
