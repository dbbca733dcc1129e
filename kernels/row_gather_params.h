#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::kernels {

// Picks rows of a bf16 matrix: dst row i = src row (cu_src[s] + rows[i]) for the i-th output row,
// which belongs to sequence s (cu_dst[s] <= i < cu_dst[s + 1]), or src row rows[i] where cu_dst is
// null. With src_ids set, an int32 per row (positions) moves along: dst_ids[i] = src_ids[src row].
struct RowGatherParams {
  const Bf16* src = nullptr;
  int src_stride = 0;  // elements
  Bf16* dst = nullptr;
  int dst_stride = 0;
  int cols = 0;
  const int32_t* rows = nullptr;  // [n]
  int n = 0;
  const int32_t* cu_src = nullptr;  // [num_seqs + 1] each sequence's rows in src (or null)
  const int32_t* cu_dst = nullptr;  // [num_seqs + 1] each sequence's rows in dst (or null)
  int num_seqs = 0;
  const int32_t* src_ids = nullptr;  // optional, [src rows]
  int32_t* dst_ids = nullptr;        // [n] where src_ids is set
};

}  // namespace kvserve::kernels
