#pragma once

#include <cuda_runtime_api.h>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// Digests of whole pages of the device arena (PageDigestBuildParams), built after prefill for
// every full prompt page and whenever a decode page fills: FreeKV's center ± mean deviation box
// or Quest's min/max, per (page, KV head) and channel, in fp32 from the bf16 keys. The arithmetic
// and its order are the CPU policy's, so the digests are equal bit for bit. head_dim <= 1024.
cudaError_t LaunchBuildPageDigests(const PageDigestBuildParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
