#pragma once

#include <cuda_runtime_api.h>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// Most query heads query drift handles per sequence.
inline constexpr int kQueryDriftMaxHeads = 256;

// FreeKV's correction check on the device (QueryDriftParams): per (sequence, KV head) the flag
// that selection and recall read as their mask, the counts added on the device, q_t kept for the
// next step. No host synchronisation. One block per sequence.
cudaError_t LaunchQueryDrift(const QueryDriftParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
