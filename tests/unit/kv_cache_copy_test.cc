// Copying a sequence's KV cache: every head's rows in their order, every layer's own length.
#include "engine/kv/kv_cache_copy.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvserve {
namespace {

constexpr KvPageShape kShape{.n_kv_heads = 2, .page_size = 4, .head_dim = 3};

// Key of (token, head, channel); values are its negation.
float Key(int token, int head, int channel) { return token * 100.0f + head * 10.0f + channel; }

void AppendTokens(SequenceKvCache& cache, int layer, int n) {
  const int stride = kShape.n_kv_heads * kShape.head_dim;
  std::vector<float> keys(n * stride), values(n * stride);
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < kShape.n_kv_heads; ++h)
      for (int c = 0; c < kShape.head_dim; ++c) {
        keys[i * stride + h * 3 + c] = Key(i, h, c);
        values[i * stride + h * 3 + c] = -Key(i, h, c);
      }
  ASSERT_TRUE(cache.GrowLayer(layer, n));
  ASSERT_TRUE(cache.Append(layer, keys.data(), values.data(), n, stride));
}

void ExpectSameRows(const SequenceKvCache& a, const SequenceKvCache& b) {
  ASSERT_EQ(a.n_layers(), b.n_layers());
  for (int l = 0; l < a.n_layers(); ++l) {
    ASSERT_EQ(a.length(l), b.length(l)) << "layer " << l;
    for (int h = 0; h < a.n_kv_heads(); ++h)
      for (int t = 0; t < a.length(l); ++t)
        for (int c = 0; c < a.head_dim(); ++c) {
          EXPECT_EQ(a.key_row(l, h, t)[c], b.key_row(l, h, t)[c]);
          EXPECT_EQ(a.value_row(l, h, t)[c], b.value_row(l, h, t)[c]);
        }
  }
}

TEST(KvCacheCopyTest, CopiesCompressedLayersHeadByHead) {
  PagePool pool(kShape, PagePool::kUnbounded);
  SequenceKvCache from(pool, 3);
  AppendTokens(from, 0, 9);
  AppendTokens(from, 1, 6);  // layer 2 stays empty
  // Heads keep different tokens, as SnapKV/FastKV leave them.
  from.Retain(0, {{0, 5, 8}, {2, 3, 8}});
  SequenceKvCache to(pool, 3);
  ASSERT_TRUE(CopyKvCache(from, to).ok());
  ExpectSameRows(from, to);
  EXPECT_EQ(to.key_row(0, 1, 0)[2], Key(2, 1, 2));
  EXPECT_EQ(to.value_row(0, 0, 1)[0], -Key(5, 0, 0));
  EXPECT_EQ(to.pages_held(), from.pages_held());

  // The copy is independent: compressing it leaves the source as it was.
  to.Retain(1, {{5}, {4}});
  EXPECT_EQ(from.length(1), 6);
  EXPECT_EQ(from.key_row(1, 0, 5)[0], Key(5, 0, 0));
}

TEST(KvCacheCopyTest, CopiesAcrossPoolsOfAnotherPageSize) {
  PagePool pool(kShape, PagePool::kUnbounded);
  PagePool other({.n_kv_heads = 2, .page_size = 16, .head_dim = 3}, PagePool::kUnbounded);
  SequenceKvCache from(pool, 1);
  AppendTokens(from, 0, 21);
  SequenceKvCache to(other, 1);
  ASSERT_TRUE(CopyKvCache(from, to).ok());
  ExpectSameRows(from, to);
}

TEST(KvCacheCopyTest, RejectsNonEmptyTargetOtherShapeAndFullPool) {
  PagePool pool(kShape, PagePool::kUnbounded);
  SequenceKvCache from(pool, 2);
  AppendTokens(from, 0, 5);
  SequenceKvCache busy(pool, 2);
  AppendTokens(busy, 1, 1);
  EXPECT_EQ(CopyKvCache(from, busy).code(), absl::StatusCode::kFailedPrecondition);
  SequenceKvCache fewer_layers(pool, 1);
  EXPECT_EQ(CopyKvCache(from, fewer_layers).code(), absl::StatusCode::kFailedPrecondition);
  PagePool tiny(kShape, 1);  // 4 tokens: too few for 5
  SequenceKvCache short_of_pages(tiny, 2);
  EXPECT_EQ(CopyKvCache(from, short_of_pages).code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace kvserve
