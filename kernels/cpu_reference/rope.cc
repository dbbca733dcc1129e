#include "kernels/cpu_reference/rope.h"

#include <cstddef>

namespace kvserve::kernels::reference {
namespace {

void RotateHead(Bf16* v, const float* cos_row, const float* sin_row, int rope_dim,
                RopePairs pairs) {
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    const int first = pairs == RopePairs::kAdjacent ? 2 * i : i;
    const int second = pairs == RopePairs::kAdjacent ? 2 * i + 1 : i + half;
    const float x0 = ToFloat(v[first]);
    const float x1 = ToFloat(v[second]);
    v[first] = ToBf16(x0 * cos_row[i] - x1 * sin_row[i]);
    v[second] = ToBf16(x0 * sin_row[i] + x1 * cos_row[i]);
  }
}

}  // namespace

void Rope(const RopeParams& p) {
  for (int r = 0; r < p.rows; ++r) {
    const int pos = p.positions[r];
    if (pos < 0 || pos >= p.max_positions) continue;
    const float* cos_row = p.table + static_cast<size_t>(pos) * p.rope_dim;
    const float* sin_row = cos_row + p.rope_dim / 2;
    for (int h = 0; h < p.n_heads; ++h) {
      RotateHead(p.q + static_cast<size_t>(r) * p.q_row_stride + h * p.head_dim, cos_row, sin_row,
                 p.rope_dim, p.pairs);
    }
    for (int h = 0; h < p.n_kv_heads; ++h) {
      RotateHead(p.k + static_cast<size_t>(r) * p.k_row_stride + h * p.head_dim, cos_row, sin_row,
                 p.rope_dim, p.pairs);
    }
  }
}

}  // namespace kvserve::kernels::reference
