#include "engine/kv/page_selection.h"

#include "kernels/cpu_reference/page_select.h"

namespace kvserve {

// One implementation of the scoring: the device kernel's CPU twin (kernels/cpu_reference).
void ScoreCandidatePages(const float* q_group, int group, const PageDigests& digests, int kv_head,
                         std::span<const int32_t> candidates, GroupAggregation aggregation,
                         std::span<float> scores) {
  std::vector<const float*> hi(candidates.size()), lo(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    hi[i] = digests.hi(candidates[i], kv_head);
    lo[i] = digests.lo(candidates[i], kv_head);
  }
  kernels::reference::ScorePageCandidates(q_group, group, digests.head_dim(), hi, lo, aggregation,
                                          scores);
}

std::vector<int32_t> TopPages(std::span<const float> scores, std::span<const int32_t> candidates,
                              int k) {
  return kernels::reference::TopCandidatePages(scores, candidates, k);
}

}  // namespace kvserve
