#pragma once

#include "kernels/cpu/vec_dot.h"

namespace kvserve::kernels::cpu {

// Every format's row loop around its one-row dot: each weight row is read once and dotted with
// all m activation rows while it sits in L1.
using RowDot = float (*)(const uint8_t* w, const float* x, const Q8Block* xq, int64_t k);
template <RowDot Dot>
void RowsOf(const MatVecArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t q_blocks = a.k / kQ8BlockSize;
  for (int64_t j = row_begin; j < row_end; ++j) {
    const uint8_t* w = a.w + static_cast<size_t>(j) * a.row_bytes;
    for (int i = 0; i < a.m; ++i) {
      const float v = Dot(w, a.x + i * a.k, a.xq != nullptr ? a.xq + i * q_blocks : nullptr, a.k);
      float& out = a.y[i * a.ldy + j];
      out = a.accumulate ? out + v : v;
    }
  }
}

}  // namespace kvserve::kernels::cpu
