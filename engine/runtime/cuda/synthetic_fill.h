#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::cuda {

// out[i] = draw (first + i) of a splitmix64 stream seeded with `seed`, mapped to [-scale, scale)
// exactly as the host synthetic-model generator maps its draws, rounded to bf16.
cudaError_t LaunchSyntheticUniform(kernels::Bf16* out, uint64_t n, uint64_t seed, uint64_t first,
                                   float scale, cudaStream_t stream);

// out[i] = 1 (the synthetic models' norm weights).
cudaError_t LaunchFillOnes(kernels::Bf16* out, uint64_t n, cudaStream_t stream);

}  // namespace kvserve::cuda
