#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kvserve {

// The selection steps SnapKV and FastKV share (research/fastkv.md §2.2-§3), on per-token scores of
// a layer's prefix (all tokens before the observation window).

enum class ScorePooling { kMax, kAvg };

// 1-D pooling along tokens: stride 1, odd `kernel`, padding kernel / 2. Max ignores the padding;
// avg divides by `kernel` at the edges too, as PyTorch's avg_pool1d (count_include_pad) does.
void PoolScores(std::span<const float> in, ScorePooling pooling, int kernel, std::span<float> out);

// Per-KV-head scores: query-head rows [n_heads][len] summed over each GQA group →
// [n_kv_heads][len].
void GroupSumScores(const float* head_scores, int n_heads, int n_kv_heads, int len, float* out);

// The tokens each KV head keeps of a layer of `n`: its top-(budget - window) prefix tokens by score
// (ties to the earlier token), then the window [n - window, n). Every head keeps the same count;
// the budget is clamped to [min(window, n), n], so the window is always kept and a budget >= n
// keeps everything. `kv_scores` is [n_kv_heads][n - window].
std::vector<std::vector<int32_t>> SelectPerKvHead(const float* kv_scores, int n_kv_heads, int n,
                                                  int window, int budget);

// The rows FastKV's token-selective propagation keeps: top-(keep - window) prefix tokens by the
// score summed over KV heads, plus the window, sorted ascending (original order). Same clamping.
std::vector<int32_t> SelectPropagatedTokens(const float* kv_scores, int n_kv_heads, int n,
                                            int window, int keep);

}  // namespace kvserve
