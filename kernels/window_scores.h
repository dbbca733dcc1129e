#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/selection_params.h"

namespace kvserve::kernels {

// Floats of scratch LaunchWindowScores needs (per-split softmax statistics) for a batch of at most
// `num_seqs` sequences, caches of at most `max_kv_len` tokens and windows of at most `max_window`.
size_t WindowScoresScratchFloats(int num_seqs, int max_kv_len, int n_heads, int max_window);

// Observation-window scores (WindowScoresParams) in fp32 from bf16 q and paged keys: two passes
// over each sequence's keys (softmax statistics per key split, then the normalised sums). Needs
// n_heads a multiple of n_kv_heads, group * max_window * head_dim <= 16384 and head_dim <= 256;
// cudaErrorInvalidValue otherwise.
cudaError_t LaunchWindowScores(const WindowScoresParams& params, cudaStream_t stream);

}  // namespace kvserve::kernels
