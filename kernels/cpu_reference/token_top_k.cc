#include "kernels/cpu_reference/token_top_k.h"

#include <cstddef>
#include <vector>

#include "kernels/cpu_reference/token_selection.h"

namespace kvserve::kernels::reference {

void SelectKvHeadRows(const KvHeadSelectParams& p) {
  const ScoredPrefixes& b = p.prefixes;
  for (int seq = 0; seq < b.num_seqs; ++seq) {
    const int n = b.kv_lens[seq];
    const int window = b.windows[seq];
    const int keep = p.cu_kept[seq + 1] - p.cu_kept[seq];
    int32_t* out = p.kept_rows + static_cast<size_t>(p.cu_kept[seq]) * p.n_kv_heads;
    if (window == 0) {
      for (int g = 0; g < p.n_kv_heads; ++g) {
        for (int r = 0; r < keep; ++r) out[static_cast<size_t>(g) * keep + r] = r;
      }
      continue;
    }
    const std::vector<std::vector<int32_t>> kept =
        SelectPerKvHead(p.kv_scores + static_cast<size_t>(b.cu_prefix[seq]) * p.n_kv_heads,
                        p.n_kv_heads, n, window, keep);
    for (int g = 0; g < p.n_kv_heads; ++g) {
      for (int r = 0; r < keep; ++r) out[static_cast<size_t>(g) * keep + r] = kept[g][r];
    }
  }
}

void SelectPropagatedRows(const PropagationSelectParams& p) {
  const ScoredPrefixes& b = p.prefixes;
  for (int seq = 0; seq < b.num_seqs; ++seq) {
    const int window = b.windows[seq];
    const int keep = p.cu_keep[seq + 1] - p.cu_keep[seq];
    int32_t* out = p.rows + p.cu_keep[seq];
    if (window == 0) {
      for (int r = 0; r < keep; ++r) out[r] = r;
      continue;
    }
    const std::vector<int32_t> rows =
        SelectPropagatedByTotal(p.totals + b.cu_prefix[seq], b.kv_lens[seq], window, keep);
    for (int r = 0; r < keep; ++r) out[r] = rows[r];
  }
}

}  // namespace kvserve::kernels::reference
