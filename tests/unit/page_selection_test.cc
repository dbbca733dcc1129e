// Quest/FreeKV page digests, bounds and selection against naive references.
#include "engine/kv/page_selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/kv/page_digest.h"
#include "engine/kv/page_digests.h"
#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

using ::kvserve::testing::RandomNormal;

TEST(PageDigestTest, MinMaxBoundsEveryKeyAndUpperBoundsEveryDot) {
  std::mt19937 rng(1);
  const int rows = 32, d = 16;
  const auto keys = RandomNormal(rows * d, rng), q = RandomNormal(d, rng);
  std::vector<float> hi(d), lo(d);
  BuildPageDigest(keys.data(), rows, d, DigestKind::kMinMax, hi.data(), lo.data());
  float best = -INFINITY;
  for (int r = 0; r < rows; ++r) {
    float dot = 0;
    for (int c = 0; c < d; ++c) {
      EXPECT_LE(keys[r * d + c], hi[c]);
      EXPECT_GE(keys[r * d + c], lo[c]);
      dot += q[c] * keys[r * d + c];
    }
    best = std::max(best, dot);
  }
  // Quest's bound is an upper bound of the page's best q·k.
  EXPECT_GE(PageUpperBound(q.data(), hi.data(), lo.data(), d), best - 1e-5f);
}

TEST(PageDigestTest, CenterMadIsTheMeanAbsoluteDeviationBoxAroundTheMidRange) {
  const float keys[] = {0, 10, 2, 20, 4, 60};  // 3 rows x 2 channels
  float hi[2], lo[2];
  BuildPageDigest(keys, 3, 2, DigestKind::kCenterMad, hi, lo);
  // channel 0: center 2, mad (2 + 0 + 2) / 3; channel 1: center 35, mad (25 + 15 + 25) / 3
  EXPECT_FLOAT_EQ(hi[0], 2 + 4.0f / 3);
  EXPECT_FLOAT_EQ(lo[0], 2 - 4.0f / 3);
  EXPECT_FLOAT_EQ(hi[1], 35 + 65.0f / 3);
  EXPECT_FLOAT_EQ(lo[1], 35 - 65.0f / 3);
}

TEST(PageDigestsTest, DigestsOfFullPagesPerHeadMatchTheirRows) {
  std::mt19937 rng(2);
  const KvPageShape shape{.n_kv_heads = 2, .page_size = 4, .head_dim = 3};
  PagePool pool(shape, PagePool::kUnbounded);
  SequenceKvCache kv(pool, 1);
  const int n = 9, stride = 2 * 3;
  const auto k = RandomNormal(n * stride, rng);
  ASSERT_TRUE(kv.GrowLayer(0, n));
  ASSERT_TRUE(kv.Append(0, k.data(), k.data(), n, stride));
  PageDigests digests(2, 3, DigestKind::kMinMax);
  digests.AppendPage(kv, 0);
  digests.AppendPage(kv, 0);
  ASSERT_EQ(digests.pages(), 2);
  for (int p = 0; p < 2; ++p)
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 3; ++c) {
        float hi = -INFINITY, lo = INFINITY;
        for (int t = p * 4; t < p * 4 + 4; ++t) {
          hi = std::max(hi, k[t * stride + h * 3 + c]);
          lo = std::min(lo, k[t * stride + h * 3 + c]);
        }
        EXPECT_EQ(digests.hi(p, h)[c], hi);
        EXPECT_EQ(digests.lo(p, h)[c], lo);
      }
}

TEST(PageSelectionTest, MeanSoftmaxMeanAndMaxAggregationMatchNaiveFormulas) {
  std::mt19937 rng(3);
  const KvPageShape shape{.n_kv_heads = 2, .page_size = 4, .head_dim = 8};
  PagePool pool(shape, PagePool::kUnbounded);
  SequenceKvCache kv(pool, 1);
  const int pages = 6, n = pages * 4, stride = 2 * 8, group = 3;
  const auto k = RandomNormal(n * stride, rng), q = RandomNormal(group * 8, rng);
  ASSERT_TRUE(kv.GrowLayer(0, n));
  ASSERT_TRUE(kv.Append(0, k.data(), k.data(), n, stride));
  PageDigests digests(2, 8, DigestKind::kMinMax);
  for (int p = 0; p < pages; ++p) digests.AppendPage(kv, 0);
  const std::vector<int32_t> candidates = {1, 2, 4, 5};
  for (const int head : {0, 1}) {
    std::vector<double> means(4, 0.0), soft(4, 0.0), maxes(4, -1e300);
    for (int g = 0; g < group; ++g) {
      std::vector<double> s(4);
      double max = -1e300, sum = 0;
      for (int i = 0; i < 4; ++i) {
        s[i] = PageUpperBound(&q[g * 8], digests.hi(candidates[i], head),
                              digests.lo(candidates[i], head), 8);
        means[i] += s[i] / group;
        maxes[i] = std::max(maxes[i], s[i]);
        max = std::max(max, s[i]);
      }
      // MeanS softmaxes q·k / sqrt(d) per query head, as attention does (research/freekv.md §4.3).
      for (double& x : s) sum += (x = std::exp((x - max) / std::sqrt(8.0)));
      for (int i = 0; i < 4; ++i) soft[i] += s[i] / sum / group;
    }
    std::vector<float> out(4);
    ScoreCandidatePages(q.data(), group, digests, head, candidates, GroupAggregation::kMean, out);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], means[i], 1e-4);
    ScoreCandidatePages(q.data(), group, digests, head, candidates, GroupAggregation::kMax, out);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], maxes[i], 1e-4);
    ScoreCandidatePages(q.data(), group, digests, head, candidates, GroupAggregation::kMeanSoftmax,
                        out);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], soft[i], 1e-6);
  }
}

// The raw bounds of a 64-dim head differ by hundreds between pages: unscaled, float exp turned
// whole sets of pages into exact zeros, which TopPages then ranked by page index, not by the query.
TEST(PageSelectionTest, MeanSoftmaxRanksPagesByBoundWhereUnscaledFloatExpUnderflows) {
  const int d = 64, page = 4;
  const KvPageShape shape{.n_kv_heads = 1, .page_size = page, .head_dim = d};
  PagePool pool(shape, PagePool::kUnbounded);
  SequenceKvCache kv(pool, 1);
  // Every row of page p is the key (b_p, 0, ..., 0): with q = e_0 the page's bound is b_p.
  const std::vector<float> bound = {-300, -150, 0, -20};
  std::vector<float> k(bound.size() * page * d, 0.0f);
  for (size_t p = 0; p < bound.size(); ++p)
    for (int r = 0; r < page; ++r) k[(p * page + r) * d] = bound[p];
  ASSERT_TRUE(kv.GrowLayer(0, static_cast<int>(bound.size()) * page));
  ASSERT_TRUE(kv.Append(0, k.data(), k.data(), static_cast<int>(bound.size()) * page, d));
  PageDigests digests(1, d, DigestKind::kMinMax);
  for (size_t p = 0; p < bound.size(); ++p) digests.AppendPage(kv, 0);
  std::vector<float> q(d, 0.0f);
  q[0] = 1.0f;
  const std::vector<int32_t> candidates = {0, 1, 2, 3};
  std::vector<float> scores(candidates.size());
  ScoreCandidatePages(q.data(), 1, digests, 0, candidates, GroupAggregation::kMeanSoftmax, scores);
  for (const float s : scores) EXPECT_GT(s, 0.0f);
  EXPECT_GT(scores[1], scores[0]);
  EXPECT_EQ(TopPages(scores, candidates, 3), (std::vector<int32_t>{1, 2, 3}));
}

TEST(PageSelectionTest, TopPagesBestFirstTiesToLowerPageReturnedAscending) {
  const std::vector<int32_t> candidates = {3, 4, 7, 9, 12};
  const std::vector<float> scores = {0.5f, 0.9f, 0.5f, 0.1f, 0.7f};
  EXPECT_EQ(TopPages(scores, candidates, 3), (std::vector<int32_t>{3, 4, 12}));
  EXPECT_EQ(TopPages(scores, candidates, 0), (std::vector<int32_t>{}));
  EXPECT_EQ(TopPages(scores, candidates, 99), candidates);  // fewer candidates than k: all
}

}  // namespace
}  // namespace kvserve
