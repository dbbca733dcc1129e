#pragma once

#include "engine/runtime/cpu/cpu_ops.h"

namespace kvserve::cpu {

// SnapKV/FastKV observation-window scores (research/fastkv.md §2.2 steps 1-5): for each query head,
// the softmax attention of the last `window` queries over the layer's `n` keys (causal inside the
// window, fp32), summed over the window queries, for the prefix columns j < n - window only.
// q: [n][n_heads * head_dim] (RoPE applied); head_keys[g]: KV head g's keys [n][head_dim];
// out: [n_heads][n - window]. `window` must be in [0, n].
void WindowScores(const float* q, const float* const* head_keys, int n, int window,
                  const AttentionShape& shape, float* out);

}  // namespace kvserve::cpu
