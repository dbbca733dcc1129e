#pragma once

#include <cuda_runtime_api.h>

#include "kernels/selection_params.h"

namespace kvserve::kernels {

// Pools each query head's window scores along tokens, sums them over each GQA group and, when
// params.totals is set, over the KV heads (ScorePoolingParams), one thread per token in the order
// the twin adds: bit-identical to reference::ScorePoolingByKvHead. n_heads a multiple of
// n_kv_heads and an odd kernel, else cudaErrorInvalidValue.
cudaError_t LaunchScorePooling(const ScorePoolingParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
