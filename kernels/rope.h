#pragma once

#include <cuda_runtime_api.h>

#include "kernels/rope_params.h"

namespace kvserve::kernels {

// RoPE on Q and K rows in place (RopeParams says how); device pointers, table included.
cudaError_t LaunchRope(const RopeParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
