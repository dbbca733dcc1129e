#include "engine/kv/sequence_kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvserve {
namespace {

// Key value of (token, head, channel) for the fixtures below; values are its negation.
float Key(int token, int head, int channel) { return token * 100.0f + head * 10.0f + channel; }

// `n` token-major rows of 2 heads x 3 channels with a padding column, as fused projections are.
bool AppendTokens(SequenceKvCache& cache, int layer, int first, int n) {
  const int stride = 2 * 3 + 1;
  std::vector<float> keys(n * stride, -1.0f), values(n * stride, -1.0f);
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 3; ++c) {
        keys[i * stride + h * 3 + c] = Key(first + i, h, c);
        values[i * stride + h * 3 + c] = -Key(first + i, h, c);
      }
  return cache.GrowLayer(layer, n) && cache.Append(layer, keys.data(), values.data(), n, stride);
}

// Head `h`'s rows of `layer` gathered out of their pages.
std::pair<std::vector<float>, std::vector<float>> Rows(const SequenceKvCache& cache, int layer,
                                                       int h) {
  std::vector<float> k(cache.length(layer) * 3), v(cache.length(layer) * 3);
  cache.GatherHead(layer, h, 0, cache.length(layer), k.data(), v.data());
  return {k, v};
}

constexpr KvPageShape kShape{.n_kv_heads = 2, .page_size = 4, .head_dim = 3};

TEST(SequenceKvCacheTest, AppendAcrossPagesKeepsEachHeadsRowsInOrder) {
  PagePool pool(kShape, PagePool::kUnbounded);
  SequenceKvCache cache(pool, 2);
  ASSERT_TRUE(AppendTokens(cache, 0, 0, 6));
  ASSERT_TRUE(AppendTokens(cache, 0, 6, 3));
  EXPECT_EQ(cache.length(0), 9);
  EXPECT_EQ(cache.length(1), 0);  // layers keep their own lengths
  EXPECT_EQ(cache.page_table(0).size(), 3u);
  for (int h = 0; h < 2; ++h) {
    const auto [k, v] = Rows(cache, 0, h);
    for (int t = 0; t < 9; ++t)
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(k[t * 3 + c], Key(t, h, c));
        EXPECT_EQ(v[t * 3 + c], -Key(t, h, c));
        EXPECT_EQ(cache.key_row(0, h, t)[c], Key(t, h, c));
      }
  }
  EXPECT_EQ(cache.bytes_used(), 3 * kShape.bytes());
  EXPECT_EQ(pool.used_pages(), 3);
}

TEST(SequenceKvCacheTest, AppendWritesOnlyIntoPagesGrowTook) {
  PagePool pool(kShape, PagePool::kUnbounded);
  SequenceKvCache cache(pool, 1);
  const std::vector<float> rows(5 * 6, 1.0f);
  EXPECT_FALSE(cache.Append(0, rows.data(), rows.data(), 5, 6));
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_EQ(pool.used_pages(), 0);
  ASSERT_TRUE(cache.Grow(4));
  EXPECT_FALSE(cache.Append(0, rows.data(), rows.data(), 5, 6));  // one page holds 4 rows
  EXPECT_TRUE(cache.Append(0, rows.data(), rows.data(), 4, 6));
  EXPECT_EQ(cache.length(0), 4);
  EXPECT_EQ(pool.used_pages(), 1);
}

TEST(SequenceKvCacheTest, RetainKeepsEachHeadsOwnRowsFreesPagesAndAppendsContinue) {
  PagePool pool(kShape, PagePool::kUnbounded);
  SequenceKvCache cache(pool, 1);
  ASSERT_TRUE(AppendTokens(cache, 0, 0, 10));
  EXPECT_EQ(pool.used_pages(), 3);
  // Rows move both forward and backward across pages.
  const std::vector<std::vector<int32_t>> kept = {{9, 0, 2, 5, 8}, {1, 3, 4, 7, 6}};
  cache.Retain(0, kept);
  ASSERT_EQ(cache.length(0), 5);
  EXPECT_EQ(pool.used_pages(), 2);
  for (int h = 0; h < 2; ++h) {
    const auto [k, v] = Rows(cache, 0, h);
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(k[r * 3 + c], Key(kept[h][r], h, c));
        EXPECT_EQ(v[r * 3 + c], -Key(kept[h][r], h, c));
      }
  }
  ASSERT_TRUE(AppendTokens(cache, 0, 10, 1));  // decode continues after the kept rows
  EXPECT_EQ(cache.length(0), 6);
  EXPECT_EQ(cache.key_row(0, 1, 5)[0], Key(10, 1, 0));
}

TEST(SequenceKvCacheTest, GrowIsAllOrNothingAndReleaseReturnsEveryPage) {
  PagePool pool(kShape, 5);
  SequenceKvCache a(pool, 2), b(pool, 2);
  EXPECT_EQ(a.PagesToGrow(5), 4);  // 2 pages x 2 layers
  ASSERT_TRUE(a.Grow(5));
  EXPECT_EQ(a.PagesToGrow(3), 0);  // room already taken
  EXPECT_EQ(pool.used_pages(), 4);
  EXPECT_FALSE(b.Grow(5));  // needs 4, 1 free: nothing taken
  EXPECT_EQ(pool.used_pages(), 4);
  EXPECT_FALSE(AppendTokens(b, 0, 0, 5));
  EXPECT_EQ(b.length(0), 0);
  ASSERT_TRUE(AppendTokens(a, 0, 0, 5));
  a.Release();
  EXPECT_EQ(pool.used_pages(), 0);
  EXPECT_EQ(a.length(0), 0);
  ASSERT_TRUE(b.Grow(5));
  {
    SequenceKvCache c(pool, 1);
    ASSERT_TRUE(AppendTokens(c, 0, 0, 4));
    EXPECT_EQ(pool.free_pages(), 0);
  }
  EXPECT_EQ(pool.used_pages(), 4);  // destruction gave c's page back
}

TEST(SequenceKvCacheTest, AppendUnwrittenTakesPagesAndLengthLikeAppend) {
  PagePool pool(kShape, 4);
  SequenceKvCache written(pool, 1), unwritten(pool, 1);
  ASSERT_TRUE(AppendTokens(written, 0, 0, 5));
  EXPECT_FALSE(unwritten.AppendUnwritten(0, 5));  // no pages yet: a backend never takes them
  EXPECT_EQ(unwritten.length(0), 0);
  ASSERT_TRUE(unwritten.GrowLayer(0, 5));
  ASSERT_TRUE(unwritten.AppendUnwritten(0, 5));
  EXPECT_EQ(unwritten.length(0), written.length(0));
  EXPECT_EQ(unwritten.page_table(0).size(), written.page_table(0).size());
  EXPECT_EQ(pool.used_pages(), 4);
  EXPECT_TRUE(unwritten.AppendUnwritten(0, 3));   // fills its second page: no new one
  EXPECT_FALSE(unwritten.AppendUnwritten(0, 1));  // would need a fifth page
  EXPECT_EQ(unwritten.length(0), 8);
  unwritten.Release();
  EXPECT_EQ(pool.used_pages(), 2);
}

TEST(PagePoolTest, PagesForBytesAndReuse) {
  EXPECT_EQ(kShape.floats(), 2u * 2 * 4 * 3);
  EXPECT_EQ(PagePool::PagesForBytes(kShape, 10 * kShape.bytes() + 1), 10);
  EXPECT_EQ(PagePool::PagesForBytes(kShape, -1), 0);
  PagePool pool(kShape, 100);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.Allocate(70, &pages));  // spans two slabs
  EXPECT_FALSE(pool.Allocate(31, &pages));
  EXPECT_EQ(pages.size(), 70u);
  std::vector<int32_t> sorted = pages;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
  pool.keys(pages[69], 1)[0] = std::byte{42};  // every page is addressable
  pool.Free(pages);
  EXPECT_EQ(pool.used_pages(), 0);
  EXPECT_EQ(pool.total_pages(), 100);
}

// A pool over a backend's own arena (ids only): the table and length follow the kept rows and
// the pages left over go back, without touching memory the host does not have.
TEST(SequenceKvCacheTest, RetainOnAnIdsOnlyPoolTrimsTheTableOnly) {
  PagePool pool(kShape, 16, /*store=*/nullptr);
  ASSERT_FALSE(pool.has_storage());
  SequenceKvCache cache(pool, 1);
  ASSERT_TRUE(cache.GrowLayer(0, 10));
  ASSERT_TRUE(cache.AppendUnwritten(0, 10));
  EXPECT_EQ(pool.used_pages(), 3);
  cache.Retain(0, {{1, 4, 9}, {0, 2, 3}});
  EXPECT_EQ(cache.length(0), 3);
  EXPECT_EQ(cache.page_table(0).size(), 1u);
  EXPECT_EQ(pool.used_pages(), 1);
}

}  // namespace
}  // namespace kvserve
