#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// Brings every sparse unit's residency to its sequence's page count on the device
// (ExtendResidencyParams; window rotation as pages fill) and lists the slots whose page is new.
cudaError_t LaunchExtendResidency(const ExtendResidencyParams& params, cudaStream_t stream);

// Shared memory a selection block needs for up to `max_candidates` candidate pages (a launch
// sizes it by residency.max_pages).
size_t SelectPagesSharedBytes(int max_candidates, int group, int head_dim, int retrieved);

// Page selection on the device (SelectPagesParams), one block per (sequence, KV head): digest
// bounds of the group's query heads, MeanS or mean over the group, top-k by rank (ties to the
// earlier page), then the residency update and the recall list, with the CPU policy's arithmetic
// in the same order. Quest selects with the current query before attention; FreeKV with q_t right
// after attention for step t+1 (mask inverted: the heads its correction did not re-select).
cudaError_t LaunchSelectPages(const SelectPagesParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
