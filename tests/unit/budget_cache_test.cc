#include "engine/kv/budget_cache.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

using ::kvserve::testing::RandomNormal;

constexpr KvPageShape kShape{.n_kv_heads = 3, .page_size = 4, .head_dim = 5};

TEST(KvLayoutTest, NhdHndRoundTripsAndPlacesEveryElement) {
  std::mt19937 rng(1);
  const auto nhd = RandomNormal(static_cast<int>(kShape.floats()), rng);
  std::vector<float> hnd(kShape.floats()), back(kShape.floats());
  NhdToHnd(nhd.data(), kShape, hnd.data());
  HndToNhd(hnd.data(), kShape, back.data());
  EXPECT_EQ(back, nhd);
  // (kv=1, token=2, head=1, channel=3) in both layouts.
  const int d = 5;
  EXPECT_EQ(hnd[((1 * 2 + 1) * 4 + 2) * d + 3], nhd[((1 * 4 + 2) * 3 + 1) * d + 3]);
}

TEST(BudgetCacheTest, RecallCopiesOneHeadsHostPageIntoItsSlotSlice) {
  std::mt19937 rng(2);
  PagePool host_pool(kShape, PagePool::kUnbounded), device_pool(kShape, 4);
  SequenceKvCache host(host_pool, 2);
  const int n = 10, stride = 3 * 5;
  const auto k = RandomNormal(n * stride, rng), v = RandomNormal(n * stride, rng);
  ASSERT_TRUE(host.GrowLayer(1, n));
  ASSERT_TRUE(host.Append(1, k.data(), v.data(), n, stride));
  BudgetCache budget(device_pool, 2, {.slots = 3, .sink = 1, .window = 1});
  EXPECT_FALSE(budget.Allocate());  // 2 layers x 3 slots > 4 pages
  EXPECT_EQ(device_pool.used_pages(), 0);
  PagePool bigger(kShape, 6);
  BudgetCache fits(bigger, 2, {.slots = 3, .sink = 1, .window = 1});
  ASSERT_TRUE(fits.Allocate());
  EXPECT_EQ(bigger.used_pages(), 6);
  fits.Recall(host, 1, /*page=*/2, /*kv_head=*/1, /*slot=*/0, 0, /*rows=*/2);  // partial page 2
  fits.Recall(host, 1, /*page=*/1, /*kv_head=*/2, /*slot=*/0, 0, /*rows=*/4);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 5; ++c) {
      EXPECT_EQ(fits.key_row(1, 0, r, 1)[c], k[(8 + r) * stride + 5 + c]);
      EXPECT_EQ(fits.value_row(1, 0, r, 1)[c], v[(8 + r) * stride + 5 + c]);
    }
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 5; ++c)
      EXPECT_EQ(fits.key_row(1, 0, r, 2)[c], k[(4 + r) * stride + 10 + c]);
  EXPECT_EQ(fits.row_stride(), 15);
  EXPECT_EQ(fits.bytes_per_chunk(), 2u * 4 * 5 * sizeof(float));
  fits.Release();
  EXPECT_EQ(bigger.used_pages(), 0);
}

}  // namespace
}  // namespace kvserve
