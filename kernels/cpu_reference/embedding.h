#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::kernels::reference {

// LaunchEmbeddingGather's twin on host memory.
void EmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows,
                     float* out);
void EmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows,
                     Bf16* out);

}  // namespace kvserve::kernels::reference
