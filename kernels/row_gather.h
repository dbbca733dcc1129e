#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/row_gather_params.h"

namespace kvserve::kernels {

// Gathers RowGatherParams' rows: the logits rows of a step, or token-selective propagation's
// compact batch (hidden rows and positions, with LaunchSelectPropagatedRows' rows and cu_keep).
cudaError_t LaunchRowGather(const RowGatherParams& params, cudaStream_t stream);

// dst[i][0, cols) = src[rows[i]][0, cols) for i < n: picks the rows whose logits are wanted out of
// a step's activations. Strides in elements; `rows` on the device.
cudaError_t LaunchRowGather(const Bf16* src, int src_stride, Bf16* dst, int dst_stride, int cols,
                            const int32_t* rows, int n, cudaStream_t stream);

}  // namespace kvserve::kernels
