#pragma once

#include <cstdint>

namespace kvserve::kernels::device {

// The sequence that owns packed row `row`: the last s with cu_seqlens[s] <= row (binary search;
// empty sequences are skipped because their start equals the next one's).
__device__ inline int SequenceOfRow(const int32_t* cu_seqlens, int num_seqs, int row) {
  int lo = 0;
  int hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu_seqlens[mid] <= row) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace kvserve::kernels::device
