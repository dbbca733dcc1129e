#pragma once

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// cos(a, b) over d channels in double; 1 when either is zero (no drift to speak of).
float QueryCosine(const float* a, const float* b, int d);

// Whether a KV head's query drifted: the mean over its group's query heads of their cosines
// (summed in float, head by head) below tau, or tau >= 1 (always re-select).
bool QueryDrifted(float cosine_sum, int group, float tau);

// LaunchQueryDrift's twin on host memory.
void QueryDrift(const QueryDriftParams& params);

}  // namespace kvserve::kernels::reference
