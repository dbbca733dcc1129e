#pragma once

#include <cstdint>

namespace kvserve::kernels {

// The new tokens of several sequences packed row after row (cu_seqlens style), each with its index
// in its own sequence's KV cache: a chunk may continue a cache that already holds earlier tokens.
struct RaggedBatch {
  const int32_t* cu_seqlens = nullptr;  // [num_seqs + 1]; sequence s owns rows [cu[s], cu[s+1])
  const int32_t* cache_positions = nullptr;  // [total_tokens]: each row's index in its cache
  int num_seqs = 0;
  int total_tokens = 0;
  int max_seqlen = 0;  // the longest sequence's rows: sizes grids without reading cu_seqlens
};

}  // namespace kvserve::kernels
