#include "kernels/cpu_reference/page_select.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/ceil_div.h"
#include "kernels/cpu_reference/page_digest.h"
#include "kernels/cpu_reference/page_residency.h"

namespace kvserve::kernels::reference {

void ScorePageCandidates(const float* q_group, int group, int head_dim,
                         std::span<const float* const> hi, std::span<const float* const> lo,
                         PageScoreAggregation aggregation, std::span<float> scores) {
  const size_t n = hi.size();
  std::fill(scores.begin(), scores.end(), 0.0f);
  std::vector<float> all_bounds(n * group);
  PageUpperBounds(q_group, group, hi, lo, head_dim, all_bounds.data());
  for (int g = 0; g < group; ++g) {
    float* bounds = all_bounds.data() + static_cast<size_t>(g) * n;
    float max = -INFINITY;
    for (size_t i = 0; i < n; ++i) max = std::max(max, bounds[i]);
    if (aggregation == PageScoreAggregation::kMean) {
      for (size_t i = 0; i < n; ++i) scores[i] += bounds[i] / group;
      continue;
    }
    if (aggregation == PageScoreAggregation::kMax) {
      for (size_t i = 0; i < n; ++i)
        scores[i] = g == 0 ? bounds[i] : std::max(scores[i], bounds[i]);
      continue;
    }
    // Softmax of q·k / sqrt(d), as attention does: unscaled, one 64-dim head's page bounds differ
    // by hundreds and float exp made whole sets of pages exact zeros (then ranked by page index).
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += (bounds[i] = std::exp((bounds[i] - max) * scale));
    for (size_t i = 0; i < n; ++i) scores[i] += static_cast<float>(bounds[i] / sum) / group;
  }
}

std::vector<int32_t> TopCandidatePages(std::span<const float> scores,
                                       std::span<const int32_t> candidates, int k) {
  std::vector<int32_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t keep = std::min(order.size(), static_cast<size_t>(std::max(0, k)));
  // A total order (candidates are distinct), so the k best are one set: a partition finds it,
  // and the pages are returned sorted by index anyway.
  std::nth_element(order.begin(), order.begin() + keep, order.end(), [&](int32_t a, int32_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : candidates[a] < candidates[b];
  });
  std::vector<int32_t> pages;
  pages.reserve(keep);
  for (size_t i = 0; i < keep; ++i) pages.push_back(candidates[order[i]]);
  std::sort(pages.begin(), pages.end());
  return pages;
}

void SelectPages(const SelectPagesParams& p) {
  const PageDigestTable& dg = p.digests;
  const int n_kv_heads = dg.n_kv_heads;
  const int d = dg.head_dim;
  const int group = p.n_heads / n_kv_heads;
  const ResidencyState& r = p.residency;
  std::vector<float> q(static_cast<size_t>(group) * d);
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    const int n_pages = CeilDiv(p.kv_lens[seq], p.page_size);
    for (int h = 0; h < n_kv_heads; ++h) {
      const size_t unit = static_cast<size_t>(seq) * n_kv_heads + h;
      const size_t state = r.Unit(seq, h, n_kv_heads);
      p.recalls.counts[unit] = 0;
      const bool chosen = p.mask == nullptr || ((p.mask[unit] != 0) != p.invert);
      if (!chosen || n_pages <= p.layout.slots) continue;
      std::vector<int32_t> candidates;
      std::vector<const float*> hi, lo;
      for (int32_t page = p.layout.sink; page < WindowStart(p.layout, n_pages); ++page) {
        const auto digest_row =
            static_cast<int32_t>(size_t(StateRow(r.state_rows, seq)) * dg.row_pages + page);
        candidates.push_back(page);
        hi.push_back(dg.data + dg.HiOffset(digest_row, h));
        lo.push_back(hi.back() + d);
      }
      const int q_index = p.q_rows != nullptr ? p.q_rows[seq] : seq;
      const Bf16* q_row =
          p.q + static_cast<size_t>(q_index) * p.q_row_stride + static_cast<size_t>(h) * group * d;
      for (size_t e = 0; e < q.size(); ++e) q[e] = ToFloat(q_row[e]);
      std::vector<float> scores(candidates.size());
      ScorePageCandidates(q.data(), group, d, hi, lo, p.aggregation, scores);
      const std::vector<int32_t> selected =
          TopCandidatePages(scores, candidates, p.layout.retrieved());
      const ResidencyRow row{.slot_page = r.slot_page + state * p.layout.slots,
                             .page_slot = r.page_slot + state * r.max_pages,
                             .n_pages = r.n_pages + state,
                             .next_window = r.next_window + state};
      const std::vector<PagePlacement> recalls = SelectResidency(p.layout, row, selected);
      for (size_t i = 0; i < recalls.size(); ++i) {
        p.recalls.pages[unit * p.recalls.capacity + i] = recalls[i].page;
        p.recalls.slots[unit * p.recalls.capacity + i] = recalls[i].slot;
      }
      p.recalls.counts[unit] = static_cast<int32_t>(recalls.size());
    }
  }
}

}  // namespace kvserve::kernels::reference
