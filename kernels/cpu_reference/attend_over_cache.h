#pragma once

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::kernels::reference {

// One query head's attention over the first `visible` cache tokens of sequence `seq`'s
// `kv_head`: softmax(q . k_j * scale) weighted sum of v_j in double, rounded to bf16 into out.
// No visible token gives zeros. Both attention twins are this, row by row.
void AttendOverCache(const Bf16* q, const PagedKvCache& cache, int seq, int kv_head, int visible,
                     float scale, Bf16* out);

}  // namespace kvserve::kernels::reference
