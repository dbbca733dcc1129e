#pragma once

#include "kernels/attention_params.h"

namespace kvserve::kernels::reference {

// LaunchPrefillAttention's twin: exact causal GQA attention, row by row, on host memory.
void PrefillAttention(const PrefillAttentionParams& params);

}  // namespace kvserve::kernels::reference
