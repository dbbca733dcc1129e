#pragma once

#include <cuda_runtime_api.h>

#include "kernels/attention_params.h"

namespace kvserve::kernels {

// Flash-attention prefill over the paged cache (PrefillAttentionParams says what it computes):
// bf16 tensor-core products, online softmax in fp32. head_dim 64 or 128; row strides multiples of
// 8; at most 64 query heads per KV head. cudaErrorInvalidValue for shapes it does not support.
cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
