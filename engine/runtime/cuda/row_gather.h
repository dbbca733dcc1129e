#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::cuda {

// dst[i][0, cols) = src[rows[i]][0, cols) for i < n: picks the rows whose logits are wanted out of
// a step's activations. Strides in elements; `rows` on the device.
cudaError_t LaunchRowGather(const kernels::Bf16* src, int src_stride, kernels::Bf16* dst,
                            int dst_stride, int cols, const int32_t* rows, int n,
                            cudaStream_t stream);

}  // namespace kvserve::cuda
