#pragma once

#include <cuda_runtime_api.h>

#include "kernels/attention_params.h"
#include "kernels/decode_split_plan.h"

namespace kvserve::kernels {

// Most query heads per KV head decode attention handles (each block keeps a group's state).
inline constexpr int kDecodeMaxGroup = 8;

// Paged decode attention, split along the context as `plan` says, then merged by a second kernel.
// `workspace` holds DecodeWorkspaceBytes(plan, ...) bytes (may be null for a one-split plan).
// head_dim 64 or 128; row strides multiples of 8; group size at most kDecodeMaxGroup.
cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& params, const DecodeSplitPlan& plan,
                                  float* workspace, cudaStream_t stream);

// The second kernel of a split decode: per (sequence, query head), rescales each split's partial
// output and sum (`partial_stats`: [max, sum] per split) to the common max and normalises into
// `out`. Shared by the dense and the page-sparse decode attention.
cudaError_t LaunchDecodeMerge(const float* partial_out, const float* partial_stats, int num_splits,
                              int n_heads, int num_seqs, int head_dim, Bf16* out,
                              int out_row_stride, cudaStream_t stream);

}  // namespace kvserve::kernels
