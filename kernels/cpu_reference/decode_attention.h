#pragma once

#include "kernels/attention_params.h"

namespace kvserve::kernels::reference {

// LaunchDecodeAttention's twin: exact attention of each sequence's one query over its whole cache
// (no split: the split is how the GPU parallelises, not what it computes).
void DecodeAttention(const DecodeAttentionParams& params);

}  // namespace kvserve::kernels::reference
