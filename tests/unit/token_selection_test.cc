// SnapKV/FastKV selection steps against direct, naive formulas on small random tensors.
#include "engine/kv/token_selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "engine/kv/sequence_kv_cache.h"
#include "engine/runtime/cpu/window_scores.h"
#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

using ::kvserve::testing::RandomNormal;

TEST(WindowScoresTest, MatchesNaiveSoftmaxOverTheWindowQueries) {
  std::mt19937 rng(3);
  const cpu::AttentionShape shape{6, 2, 8};
  for (auto [n, w] : {std::pair{20, 8}, {9, 8}, {8, 8}, {30, 1}, {5, 0}}) {
    const auto q = RandomNormal(n * 6 * 8, rng), k = RandomNormal(n * 2 * 8, rng);
    std::vector<float> out(6 * (n - w));
    PagePool pool({2, 4, 8}, PagePool::kUnbounded);
    SequenceKvCache cache(pool, 1);
    ASSERT_TRUE(cache.GrowLayer(0, n));
    ASSERT_TRUE(cache.Append(0, k.data(), k.data(), n, 2 * 8));
    std::vector<float> k0(n * 8), k1(n * 8), unused(n * 8);
    cache.GatherHead(0, 0, 0, n, k0.data(), unused.data());
    cache.GatherHead(0, 1, 0, n, k1.data(), unused.data());
    const float* head_keys[] = {k0.data(), k1.data()};
    cpu::WindowScores(q.data(), head_keys, n, w, shape, out.data());
    for (int h = 0; h < 6; ++h) {
      std::vector<double> expect(n - w, 0.0);
      for (int i = n - w; i < n; ++i) {
        std::vector<double> logits(i + 1);
        double max = -1e300, sum = 0;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int t = 0; t < 8; ++t)
            dot += double{q[(i * 6 + h) * 8 + t]} * k[(j * 2 + h / 3) * 8 + t];
          logits[j] = dot / std::sqrt(8.0);
          max = std::max(max, logits[j]);
        }
        for (double& x : logits) sum += (x = std::exp(x - max));
        for (int j = 0; j < n - w; ++j) expect[j] += logits[j] / sum;
      }
      for (int j = 0; j < n - w; ++j) {
        ASSERT_NEAR(out[h * (n - w) + j], expect[j], 1e-5) << "n=" << n << " w=" << w << " h=" << h;
      }
    }
  }
}

TEST(TokenSelectionTest, PoolingMatchesNaiveIncludingEdges) {
  const std::vector<float> in = {1, 5, 2, 0, 3, 9, 4, 1, 0, 2};
  for (int kernel : {1, 3, 7}) {
    std::vector<float> mx(in.size()), avg(in.size());
    PoolScores(in, ScorePooling::kMax, kernel, mx);
    PoolScores(in, ScorePooling::kAvg, kernel, avg);
    for (int j = 0; j < static_cast<int>(in.size()); ++j) {
      float m = -1e30f, s = 0;
      for (int t = j - kernel / 2; t <= j + kernel / 2; ++t) {
        if (t < 0 || t >= static_cast<int>(in.size())) continue;  // zero padding
        m = std::max(m, in[t]);
        s += in[t];
      }
      EXPECT_EQ(mx[j], m) << kernel << " " << j;
      EXPECT_FLOAT_EQ(avg[j], s / kernel) << kernel << " " << j;
    }
  }
  // One-element input: the edge on both sides.
  std::vector<float> one = {4}, out(1);
  PoolScores(one, ScorePooling::kAvg, 7, out);
  EXPECT_FLOAT_EQ(out[0], 4.0f / 7);
}

TEST(TokenSelectionTest, GroupSumAddsTheHeadsOfEachGroup) {
  const std::vector<float> heads = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 4 heads x 3
  std::vector<float> kv(2 * 3);
  GroupSumScores(heads.data(), 4, 2, 3, kv.data());
  EXPECT_EQ(kv, (std::vector<float>{5, 7, 9, 17, 19, 21}));
}

TEST(TokenSelectionTest, PerKvHeadKeepsTopScoresThenTheWindowWithEqualCounts) {
  std::mt19937 rng(5);
  const int heads = 3, n = 40, w = 8, budget = 20;
  const auto scores = RandomNormal(heads * (n - w), rng);
  const auto kept = SelectPerKvHead(scores.data(), heads, n, w, budget);
  ASSERT_EQ(kept.size(), 3u);
  for (int g = 0; g < heads; ++g) {
    ASSERT_EQ(kept[g].size(), static_cast<size_t>(budget));
    const std::set<int32_t> unique(kept[g].begin(), kept[g].end());
    EXPECT_EQ(unique.size(), kept[g].size());
    for (int j = n - w; j < n; ++j) EXPECT_TRUE(unique.count(j)) << "window token " << j;
    // Every kept prefix token scores at least as high as every dropped one.
    float min_kept = 1e30f, max_dropped = -1e30f;
    for (int j = 0; j < n - w; ++j) {
      const float s = scores[g * (n - w) + j];
      if (unique.count(j)) {
        min_kept = std::min(min_kept, s);
      } else {
        max_dropped = std::max(max_dropped, s);
      }
    }
    EXPECT_GE(min_kept, max_dropped);
  }
}

TEST(TokenSelectionTest, BudgetsAreClampedSoTheWindowStaysAndLargeBudgetsKeepAll) {
  const std::vector<float> scores(2 * 2, 1.0f);
  // Budget below the window: the window alone.
  auto small = SelectPerKvHead(scores.data(), 2, 10, 8, 3);
  EXPECT_EQ(small[0], (std::vector<int32_t>{2, 3, 4, 5, 6, 7, 8, 9}));
  // Budget at least the context: everything.
  auto all = SelectPerKvHead(scores.data(), 2, 10, 8, 100);
  EXPECT_EQ(all[1].size(), 10u);
  // A prompt shorter than the window: all of it.
  auto tiny = SelectPerKvHead(nullptr, 2, 5, 8, 4);
  EXPECT_EQ(tiny[0], (std::vector<int32_t>{0, 1, 2, 3, 4}));
  // Ties go to the earlier token.
  auto tie = SelectPerKvHead(scores.data(), 2, 10, 8, 9);
  EXPECT_EQ(tie[0].front(), 0);
}

TEST(TokenSelectionTest, PropagatedTokensAreSortedIncludeTheWindowAndFollowSummedScores) {
  std::mt19937 rng(8);
  const int heads = 2, n = 50, w = 8, keep = 18;
  const auto scores = RandomNormal(heads * (n - w), rng);
  const auto idx = SelectPropagatedTokens(scores.data(), heads, n, w, keep);
  ASSERT_EQ(idx.size(), static_cast<size_t>(keep));
  EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
  EXPECT_EQ(std::set<int32_t>(idx.begin(), idx.end()).size(), idx.size());
  EXPECT_EQ(std::vector<int32_t>(idx.end() - w, idx.end()),
            (std::vector<int32_t>{42, 43, 44, 45, 46, 47, 48, 49}));
  std::vector<float> total(n - w);
  for (int j = 0; j < n - w; ++j) total[j] = scores[j] + scores[(n - w) + j];
  const std::set<int32_t> kept(idx.begin(), idx.end());
  for (int a = 0; a < n - w; ++a) {
    for (int b = 0; b < n - w; ++b) {
      if (kept.count(a) && !kept.count(b)) {
        EXPECT_GE(total[a], total[b]);
      }
    }
  }
  EXPECT_EQ(SelectPropagatedTokens(scores.data(), heads, n, w, 1000).size(),
            static_cast<size_t>(n));
}

}  // namespace
}  // namespace kvserve
