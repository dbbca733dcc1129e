#pragma once

#include <cuda_runtime_api.h>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels {

// FreeKV's speculative recall of one layer, ordered between the compute stream and a recall
// stream with events only (research/freekv.md §2.2, and the reference code's races, §10.1-10.2):
// the recall stream waits for everything issued on the compute stream so far (attention(l, t),
// which reads the victim slots, and q_t, which selection reads), then selects with q_t and
// gathers the new pages, and records `recall_done`. The host never waits.
cudaError_t IssueSpeculativeRecall(const SelectPagesParams& select, const RecallParams& recall,
                                   cudaStream_t compute, cudaStream_t recall_stream,
                                   cudaEvent_t attention_done, cudaEvent_t recall_done);

// Before attention(l, t + 1): the compute stream waits for layer l's latest speculative recall.
cudaError_t WaitForSpeculativeRecall(cudaStream_t compute, cudaEvent_t recall_done);

}  // namespace kvserve::kernels
