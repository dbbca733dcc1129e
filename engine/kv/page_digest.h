#pragma once

namespace kvserve {

// How a page's keys are summarized for Quest/FreeKV page scoring (research/freekv.md §4.2).
enum class DigestKind {
  kMinMax,     // per-channel max/min of the keys: Quest, and the FreeKV paper
  kCenterMad,  // center ± mean |k - center| per channel: ArkVale's tighter box, FreeKV's system
               // code
};

// The bounding box of one page's keys for one KV head: hi[d] and lo[d] per channel, from `rows`
// post-RoPE keys [rows][head_dim] (rows >= 1).
void BuildPageDigest(const float* keys, int rows, int head_dim, DigestKind kind, float* hi,
                     float* lo);

// Quest's upper bound of q·k over a page: Σ_d max(q_d·hi_d, q_d·lo_d). No 1/sqrt(d): the order
// of pages does not depend on it; MeanS aggregation (page_selection.h) applies it before softmax.
float PageUpperBound(const float* q, const float* hi, const float* lo, int head_dim);

}  // namespace kvserve
