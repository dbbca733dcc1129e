#pragma once

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"
#include "kernels/ragged_batch.h"

namespace kvserve::kernels::reference {

// LaunchKvAppend's twin: the cache's pages and page table in host memory.
void KvAppend(const Bf16* k, int k_row_stride, const Bf16* v, int v_row_stride,
              const RaggedBatch& batch, const PagedKvCache& cache);

}  // namespace kvserve::kernels::reference
