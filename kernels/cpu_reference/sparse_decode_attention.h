#pragma once

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// LaunchSparseDecodeAttention's twin: each query head's softmax attention (double) over the keys
// of its KV head's page list, rounded to bf16.
void SparseDecodeAttention(const SparseDecodeAttentionParams& params);

}  // namespace kvserve::kernels::reference
