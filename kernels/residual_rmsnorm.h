#pragma once

#include <cuda_runtime_api.h>

#include "kernels/bf16.h"

namespace kvserve::kernels {

// For each of `rows` rows of `dim`: x += residual (x is the bf16 residual stream, updated in
// place), then y = x / rms(x) * weight, with fp32 sums. A null `residual` skips the add.
cudaError_t LaunchResidualRmsNorm(Bf16* x, const Bf16* residual, const Bf16* weight, Bf16* y,
                                  int rows, int dim, float eps, cudaStream_t stream);

}  // namespace kvserve::kernels
