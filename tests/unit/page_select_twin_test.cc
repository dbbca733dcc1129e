// The device selection's CPU twin (kernels/cpu_reference/page_select.h) scores and picks pages
// exactly as the CPU policy's page_selection does: the same floats, the same pages, both group
// aggregations, with many ties. If page_selection's math changes, this fails until the twin (and
// the kernel) follow.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "engine/kv/page_digests.h"
#include "engine/kv/page_selection.h"
#include "engine/kv/sequence_kv_cache.h"
#include "kernels/cpu_reference/page_digest.h"
#include "kernels/cpu_reference/page_select.h"

namespace kvserve {
namespace {

TEST(PageSelectTwinTest, ScoresAndTopPagesEqualThePolicysBitForBit) {
  const KvPageShape shape{.n_kv_heads = 2, .page_size = 4, .head_dim = 8};
  const int group = 3, n = 4 * 40, stride = 2 * 8;
  PagePool pool(shape, PagePool::kUnbounded);
  SequenceKvCache kv(pool, 1);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> coarse(-3, 3);  // many ties
  std::vector<float> k(n * stride), q(group * 2 * 8);
  for (float& v : k) v = static_cast<float>(coarse(rng)) / 2;
  for (float& v : q) v = static_cast<float>(coarse(rng));
  ASSERT_TRUE(kv.GrowLayer(0, n));
  ASSERT_TRUE(kv.Append(0, k.data(), k.data(), n, stride));
  PageDigests digests(2, 8, DigestKind::kMinMax);
  for (int p = 0; p < n / 4; ++p) digests.AppendPage(kv, 0);
  std::vector<int32_t> candidates;
  for (int p = 2; p < 37; ++p) candidates.push_back(p);
  for (const auto aggregation : {GroupAggregation::kMeanSoftmax, GroupAggregation::kMean}) {
    for (int h = 0; h < 2; ++h) {
      const float* qg = q.data() + h * group * 8;
      std::vector<float> expected(candidates.size()), actual(candidates.size());
      ScoreCandidatePages(qg, group, digests, h, candidates, aggregation, expected);
      std::vector<const float*> hi, lo;
      for (int32_t p : candidates) {
        hi.push_back(digests.hi(p, h));
        lo.push_back(digests.lo(p, h));
      }
      kernels::reference::ScorePageCandidates(qg, group, 8, hi, lo,
                                              aggregation == GroupAggregation::kMean
                                                  ? kernels::PageScoreAggregation::kMean
                                                  : kernels::PageScoreAggregation::kMeanSoftmax,
                                              actual);
      EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)), 0);
      for (int top : {0, 5, 17, 40}) {
        EXPECT_EQ(kernels::reference::TopCandidatePages(actual, candidates, top),
                  TopPages(expected, candidates, top));
      }
    }
  }
}

// The scoring's blocked bounds (four pages at a time, every query head of the group per block)
// equal the one-page bound to the bit, for every remainder of the blocks and head sizes that
// fill the eight lanes or not, on values whose sums round.
TEST(PageSelectTwinTest, BlockedPageBoundsEqualOnePageBoundsBitForBit) {
  const int group = 3;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const int d : {64, 12, 5}) {
    std::vector<float> q(size_t(group) * d), digests(size_t(21) * 2 * d);
    for (float& v : q) v = normal(rng);
    for (float& v : digests) v = normal(rng);
    for (size_t n = 0; n <= 21; ++n) {
      std::vector<const float*> hi, lo;
      for (size_t i = 0; i < n; ++i) {
        hi.push_back(digests.data() + i * 2 * d);
        lo.push_back(digests.data() + i * 2 * d + d);
      }
      std::vector<float> blocked(n * group);
      kernels::reference::PageUpperBounds(q.data(), group, hi, lo, d, blocked.data());
      for (int g = 0; g < group; ++g) {
        for (size_t i = 0; i < n; ++i) {
          const float one =
              kernels::reference::PageUpperBound(q.data() + size_t(g) * d, hi[i], lo[i], d);
          EXPECT_EQ(std::memcmp(&blocked[g * n + i], &one, sizeof(float)), 0)
              << "d " << d << ", " << n << " pages, head " << g << ", page " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace kvserve
