#include "kernels/cpu_reference/row_gather.h"

#include <algorithm>
#include <cstddef>

namespace kvserve::kernels::reference {

void RowGather(const RowGatherParams& p) {
  int seq = 0;
  for (int i = 0; i < p.n; ++i) {
    int src_row = p.rows[i];
    if (p.cu_dst != nullptr) {
      while (p.cu_dst[seq + 1] <= i) ++seq;
      src_row += p.cu_src[seq];
    }
    std::copy_n(p.src + static_cast<size_t>(src_row) * p.src_stride, p.cols,
                p.dst + static_cast<size_t>(i) * p.dst_stride);
    if (p.src_ids != nullptr) p.dst_ids[i] = p.src_ids[src_row];
  }
}

}  // namespace kvserve::kernels::reference
