#pragma once

#include <cuda_runtime_api.h>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// Writes a step's new KV rows, every KV head's keys and values, from device arena pages to host
// tier pages (HostTierWriteParams), with 16-byte stores into the mapped pinned memory: issue it on
// a copy stream after an event recorded behind the rows' append. head_dim a multiple of 8 and
// 16-byte aligned pages, else cudaErrorInvalidValue.
cudaError_t LaunchHostTierWrite(const HostTierWriteParams& params, cudaStream_t stream);

// The zero-copy recall (RecallParams): one launch per layer gathers every listed (sequence, KV
// head, page) from the mapped host tier into its budget slot with 16-byte loads; no staging
// buffer, no host call per page, the lists never leave the device. Same shape rules.
cudaError_t LaunchRecallPages(const RecallParams& params, cudaStream_t stream);

// Each unit's attention page list from its residency (EmitPageListsParams).
cudaError_t LaunchEmitPageLists(const EmitPageListsParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
