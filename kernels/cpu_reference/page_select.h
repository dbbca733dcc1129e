#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// One KV head's score for each candidate page: Quest bounds of the group's query heads (q_group:
// [group][head_dim]) against the digests (hi(page), lo(page) per candidate), aggregated over the
// group. The same arithmetic, in the same order, as engine/kv's ScoreCandidatePages: softmax
// terms std::exp in float, their sum in double, candidate by candidate.
void ScorePageCandidates(const float* q_group, int group, int head_dim,
                         std::span<const float* const> hi, std::span<const float* const> lo,
                         PageScoreAggregation aggregation, std::span<float> scores);

// The `k` best candidates by score (ties to the lower page), ascending by page: engine/kv's
// TopPages.
std::vector<int32_t> TopCandidatePages(std::span<const float> scores,
                                       std::span<const int32_t> candidates, int k);

// LaunchSelectPages' twin on host memory.
void SelectPages(const SelectPagesParams& params);

}  // namespace kvserve::kernels::reference
