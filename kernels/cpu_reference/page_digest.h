#pragma once

#include <span>

#include "kernels/page_bound_lanes.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// The bounding box of one page's keys for one KV head: hi[d] and lo[d] per channel, from `rows`
// post-RoPE keys [rows][head_dim] (rows >= 1). The CPU policy's digests and the device's.
void BuildPageDigest(const float* keys, int rows, int head_dim, PageDigestKind kind, float* hi,
                     float* lo);

// Quest's upper bound of q·k over a page: Σ_d max(q_d·hi_d, q_d·lo_d). No 1/sqrt(d): only the
// order of pages matters, and softmax aggregation takes the raw bound as the Quest code does.
// Summed in lanes as kernels/page_bound_lanes.h says, equal to the device kernel's bound.
float PageUpperBound(const float* q, const float* hi, const float* lo, int head_dim);

// PageUpperBound of each page i (hi[i], lo[i]) for each of the `group` query heads q_group[g]
// into bounds[g * n + i] (n pages), equal to it bit for bit. Pages go four at a time, every head
// before the next four: at pages of 4 tokens the digests are megabytes a layer, read once.
void PageUpperBounds(const float* q_group, int group, std::span<const float* const> hi,
                     std::span<const float* const> lo, int head_dim, float* bounds);

// LaunchBuildPageDigests' twin on host memory: BuildPageDigest of each listed page's keys, per KV
// head, from the bf16 arena.
void BuildPageDigests(const PageDigestBuildParams& params);

}  // namespace kvserve::kernels::reference
