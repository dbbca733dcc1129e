#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::kernels {

// out[r] = table[ids[r]] for `rows` token ids; table is [vocab][dim] bf16 on the device. An id
// outside [0, vocab) gives a zero row (ids are validated before they reach the GPU).
cudaError_t LaunchEmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids,
                                  int rows, float* out, cudaStream_t stream);
cudaError_t LaunchEmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids,
                                  int rows, Bf16* out, cudaStream_t stream);

}  // namespace kvserve::kernels
