#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/page_digests.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve {

// How the query heads of a GQA group agree on one page set (research/freekv.md §4.3): MeanS
// (FreeKV paper), plain mean (FreeKV system code) or max (Quest); the device kernels' enum.
using GroupAggregation = kernels::PageScoreAggregation;

// One KV head's score for each page in `candidates`: Quest bounds of the group's query heads
// (q_group: [group][head_dim], post-RoPE) against the page digests, aggregated over the group.
void ScoreCandidatePages(const float* q_group, int group, const PageDigests& digests, int kv_head,
                         std::span<const int32_t> candidates, GroupAggregation aggregation,
                         std::span<float> scores);

// The `k` best candidates by score (ties to the lower page), ascending by page.
std::vector<int32_t> TopPages(std::span<const float> scores, std::span<const int32_t> candidates,
                              int k);

}  // namespace kvserve
