#pragma once

#include <cuda_runtime_api.h>

#include "kernels/decode_split_plan.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// Page-sparse decode attention (SparseDecodeAttentionParams): each (sequence, KV head) attends
// over its own page list, sink + selected + recent pages (or a dense sequence's pages), split
// along the list as `plan` says and merged as the dense decode kernel is. Plan it with
// PlanDecodeSplits(num_seqs, n_kv_heads, max_list_pages * page_size, SMs); `workspace` holds
// DecodeWorkspaceBytes(plan, ...) bytes. head_dim 64 or 128, group <= kDecodeMaxGroup.
cudaError_t LaunchSparseDecodeAttention(const SparseDecodeAttentionParams& params,
                                        const DecodeSplitPlan& plan, float* workspace,
                                        cudaStream_t stream);

}  // namespace kvserve::kernels
