#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/selection_params.h"

namespace kvserve::kernels::reference {

// The selection steps SnapKV and FastKV share (research/fastkv.md §2.2-§3), on per-token scores of
// a layer's prefix (all tokens before the observation window). The CPU engine runs these
// (engine/kv/token_selection.h forwards to them); the CUDA kernels of selection_params.h are
// tested against them.

// 1-D pooling along tokens: stride 1, odd `kernel`, padding kernel / 2. Max ignores the padding;
// avg divides by `kernel` at the edges too, as PyTorch's avg_pool1d (count_include_pad) does.
void PoolScores(std::span<const float> in, ScorePooling pooling, int kernel, std::span<float> out);

// Per-KV-head scores: query-head rows [n_heads][len] summed over each GQA group →
// [n_kv_heads][len], heads added in order from zero.
void GroupSumScores(const float* head_scores, int n_heads, int n_kv_heads, int len, float* out);

// The score token-selective propagation ranks by: [n_kv_heads][len] summed over the KV heads, in
// order from zero → [len].
void SumOverKvHeads(const float* kv_scores, int n_kv_heads, int len, float* out);

// The tokens each KV head keeps of a layer of `n`: its top-(budget - window) prefix tokens by score
// (ties to the earlier token), best first, then the window [n - window, n). Every head keeps the
// same count; the budget is clamped to [min(window, n), n] (KeptRowCount), so the window is always
// kept and a budget >= n keeps everything. `kv_scores` is [n_kv_heads][n - window].
std::vector<std::vector<int32_t>> SelectPerKvHead(const float* kv_scores, int n_kv_heads, int n,
                                                  int window, int budget);

// The rows FastKV's token-selective propagation keeps: top-(keep - window) prefix tokens by the
// score summed over KV heads (SumOverKvHeads), plus the window, sorted ascending (original order).
// Same clamping.
std::vector<int32_t> SelectPropagatedTokens(const float* kv_scores, int n_kv_heads, int n,
                                            int window, int keep);

// SelectPropagatedTokens from the summed score `totals` ([n - window]).
std::vector<int32_t> SelectPropagatedByTotal(const float* totals, int n, int window, int keep);

}  // namespace kvserve::kernels::reference
