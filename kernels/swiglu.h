#pragma once

#include <cuda_runtime_api.h>

#include "kernels/bf16.h"

namespace kvserve::kernels {

// out[r][i] = silu(gate_up[r][i]) * gate_up[r][ffn + i]: the fused [gate | up] projection rows
// ([rows][2 * ffn]) to the down projection's input ([rows][ffn]), in fp32 math.
cudaError_t LaunchSwiglu(const Bf16* gate_up, Bf16* out, int rows, int ffn, cudaStream_t stream);

}  // namespace kvserve::kernels
