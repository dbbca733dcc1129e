#pragma once

#include <cuda_runtime_api.h>

#include "kernels/selection_params.h"

namespace kvserve::kernels {

// Compacts each (sequence, KV head)'s kept rows, K and V, to the front of the layer's paged cache
// (KvCompactionParams): all kept rows are copied to the scratch first, then back, so no row is
// overwritten before it is read. One launch per layer (a layer's cache has its own page table).
// head_dim a multiple of 8 and 16-byte aligned pages and scratch, else cudaErrorInvalidValue.
cudaError_t LaunchKvCompaction(const KvCompactionParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
