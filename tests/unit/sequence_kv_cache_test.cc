#include "engine/kv/sequence_kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvserve {
namespace {

// Key value of (token, head, channel) for the fixtures below; values are its negation.
float Key(int token, int head, int channel) { return token * 100.0f + head * 10.0f + channel; }

// `n` token-major rows of 2 heads x 3 channels with a padding column, as fused projections are.
void AppendTokens(SequenceKvCache& cache, int layer, int first, int n) {
  const int stride = 2 * 3 + 1;
  std::vector<float> keys(n * stride, -1.0f), values(n * stride, -1.0f);
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 3; ++c) {
        keys[i * stride + h * 3 + c] = Key(first + i, h, c);
        values[i * stride + h * 3 + c] = -Key(first + i, h, c);
      }
  cache.Append(layer, keys.data(), values.data(), n, stride);
}

TEST(SequenceKvCacheTest, AppendStoresEachHeadContiguously) {
  SequenceKvCache cache(2, 2, 3);
  AppendTokens(cache, 0, 0, 4);
  AppendTokens(cache, 0, 4, 1);
  EXPECT_EQ(cache.length(0), 5);
  EXPECT_EQ(cache.length(1), 0);  // layers keep their own lengths
  for (int h = 0; h < 2; ++h)
    for (int t = 0; t < 5; ++t)
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(cache.keys(0, h)[t * 3 + c], Key(t, h, c));
        EXPECT_EQ(cache.values(0, h)[t * 3 + c], -Key(t, h, c));
      }
  EXPECT_EQ(cache.bytes_used(), 5u * 2 * 3 * 2 * sizeof(float));
}

TEST(SequenceKvCacheTest, RetainKeepsEachHeadsOwnRowsInOrderAndAppendsContinue) {
  SequenceKvCache cache(1, 2, 3);
  AppendTokens(cache, 0, 0, 6);
  cache.Retain(0, {{5, 0, 2}, {1, 3, 4}});
  ASSERT_EQ(cache.length(0), 3);
  const std::vector<std::vector<int>> kept = {{5, 0, 2}, {1, 3, 4}};
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(cache.keys(0, h)[r * 3 + c], Key(kept[h][r], h, c));
        EXPECT_EQ(cache.values(0, h)[r * 3 + c], -Key(kept[h][r], h, c));
      }
  AppendTokens(cache, 0, 6, 1);  // decode continues after the kept rows
  EXPECT_EQ(cache.length(0), 4);
  EXPECT_EQ(cache.keys(0, 1)[3 * 3], Key(6, 1, 0));
}

}  // namespace
}  // namespace kvserve
