// LaunchKvCompaction against its CPU twin, bit for bit over the whole page pool: kept rows in rank
// order (rows move both ways, so an in-place copy would read overwritten rows), all rows reversed,
// the identity, a sequence keeping nothing, caches not a multiple of the page size, head_dim 64
// and 128, page sizes 16 and 32.
#include <algorithm>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/kv_compaction.h"
#include "kernels/kv_compaction.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size)
using CompactionCase = std::tuple<int, int>;

class KvCompactionGpuTest : public testing::GpuTestWithParam<CompactionCase> {};

std::string Describe(const CompactionCase& c) {
  const auto [head_dim, page_size] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size;
  return name.str();
}

TEST_P(KvCompactionGpuTest, MatchesTwinBitForBit) {
  const auto [head_dim, page_size] = GetParam();
  const int n_kv_heads = 3;
  const std::vector<int32_t> kv_lens = {77, 40, 130, 9, 33};
  const std::vector<int32_t> keeps = {20, 40, 61, 0, 33};
  std::mt19937 rng(head_dim + page_size);
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, kv_lens, rng);
  std::vector<int32_t> cu_kept = {0};
  std::vector<int32_t> kept_rows;
  for (size_t s = 0; s < kv_lens.size(); ++s) {
    cu_kept.push_back(cu_kept.back() + keeps[s]);
    for (int g = 0; g < n_kv_heads; ++g) {
      std::vector<int32_t> rows(kv_lens[s]);
      std::iota(rows.begin(), rows.end(), 0);
      if (s == 1) {
        std::reverse(rows.begin(), rows.end());  // every row moves
      } else if (s != 4) {
        std::shuffle(rows.begin(), rows.end(), rng);  // s == 4: the identity
      }
      kept_rows.insert(kept_rows.end(), rows.begin(), rows.begin() + keeps[s]);
    }
  }
  const int total_kept = cu_kept.back();
  const int max_kept = *std::max_element(keeps.begin(), keeps.end());

  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<int32_t> d_cu(cu_kept);
  DeviceBuffer<int32_t> d_rows(kept_rows);
  DeviceBuffer<Bf16> d_scratch(static_cast<size_t>(total_kept) * n_kv_heads * 2 * head_dim);
  ASSERT_CUDA_OK(LaunchKvCompaction({.cache = d_cache.view,
                                     .num_seqs = static_cast<int>(kv_lens.size()),
                                     .cu_kept = d_cu.data(),
                                     .kept_rows = d_rows.data(),
                                     .total_kept = total_kept,
                                     .max_kept = max_kept,
                                     .scratch = d_scratch.data()},
                                    nullptr));

  reference::KvCompaction({.cache = cache.View(cache.pages.data(), cache.page_table.data()),
                           .num_seqs = static_cast<int>(kv_lens.size()),
                           .cu_kept = cu_kept.data(),
                           .kept_rows = kept_rows.data(),
                           .total_kept = total_kept,
                           .max_kept = max_kept});
  testing::ExpectBitsEqual(d_cache.pages.ToHost(), cache.pages, Describe(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvCompactionGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32)),
                         [](const auto& info) { return Describe(info.param); });

// The twin itself: row kept_rows[i] of each head becomes row i, K and V.
TEST(KvCompactionTwinTest, MovesKeptRowsToTheFrontInOrder) {
  std::mt19937 rng(1);
  const std::vector<int32_t> kv_lens = {20};
  testing::HostPagedCache cache =
      testing::MakeRandomPagedCache({.n_kv_heads = 2, .page_size = 8, .head_dim = 8}, kv_lens, rng);
  const testing::HostPagedCache before = cache;
  const std::vector<int32_t> cu_kept = {0, 3};
  const std::vector<int32_t> kept_rows = {19, 0, 7, 2, 1, 0};
  const PagedKvCache view = cache.View(cache.pages.data(), cache.page_table.data());
  reference::KvCompaction({.cache = view,
                           .num_seqs = 1,
                           .cu_kept = cu_kept.data(),
                           .kept_rows = kept_rows.data(),
                           .total_kept = 3,
                           .max_kept = 3});
  const PagedKvCache old = view;
  for (int g = 0; g < 2; ++g) {
    for (int i = 0; i < 3; ++i) {
      const int from = kept_rows[g * 3 + i];
      for (int d = 0; d < 8; ++d) {
        EXPECT_EQ(cache.pages[view.KeyOffset(0, i, g) + d].bits,
                  before.pages[old.KeyOffset(0, from, g) + d].bits);
        EXPECT_EQ(cache.pages[view.ValueOffset(0, i, g) + d].bits,
                  before.pages[old.ValueOffset(0, from, g) + d].bits);
      }
    }
  }
}

}  // namespace
}  // namespace kvserve::kernels
