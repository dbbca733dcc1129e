#include "kernels/cpu_reference/embedding.h"

#include <cstddef>

namespace kvserve::kernels::reference {
namespace {

void Put(float* p, float v) { *p = v; }
void Put(Bf16* p, float v) { *p = ToBf16(v); }

template <typename Out>
void Gather(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows, Out* out) {
  for (int r = 0; r < rows; ++r) {
    const bool valid = ids[r] >= 0 && ids[r] < vocab;
    const Bf16* src = table + static_cast<size_t>(valid ? ids[r] : 0) * dim;
    for (int i = 0; i < dim; ++i) {
      Put(out + static_cast<size_t>(r) * dim + i, valid ? ToFloat(src[i]) : 0.0f);
    }
  }
}

}  // namespace

void EmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows,
                     float* out) {
  Gather(table, vocab, dim, ids, rows, out);
}

void EmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows,
                     Bf16* out) {
  Gather(table, vocab, dim, ids, rows, out);
}

}  // namespace kvserve::kernels::reference
