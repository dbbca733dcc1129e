#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/selection_params.h"

namespace kvserve::kernels {

// Bytes of scratch the two selections below need for at most `max_items` scores in at most
// `max_segments` sorted segments: per-KV-head selection sorts total_prefix * n_kv_heads items in
// num_seqs * n_kv_heads segments, propagation total_prefix in num_seqs.
cudaError_t SelectionScratchBytes(int max_items, int max_segments, size_t* bytes);

// Per-(sequence, KV head) top-k rows (KvHeadSelectParams), best first with ties to the earlier
// token, then the window: a stable descending segmented radix sort (CUB) of each head's scores.
// cudaErrorInvalidValue for bad shapes or too little scratch.
cudaError_t LaunchSelectKvHeadRows(const KvHeadSelectParams& params, cudaStream_t stream);

// Token-selective propagation's rows (PropagationSelectParams): the same sort over each sequence's
// summed score, then its top rows sorted ascending and the window appended.
cudaError_t LaunchSelectPropagatedRows(const PropagationSelectParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
