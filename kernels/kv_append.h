#pragma once

#include <cuda_runtime_api.h>

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"
#include "kernels/ragged_batch.h"

namespace kvserve::kernels {

// Writes each new token's K and V rows (all KV heads; rows of the fused QKV output, say) into its
// sequence's pages at batch.cache_positions[t]. Needs head_dim and both row strides multiples of 8
// and 16-byte aligned pointers (16-byte copies).
cudaError_t LaunchKvAppend(const Bf16* k, int k_row_stride, const Bf16* v, int v_row_stride,
                           const RaggedBatch& batch, const PagedKvCache& cache,
                           cudaStream_t stream);

}  // namespace kvserve::kernels
