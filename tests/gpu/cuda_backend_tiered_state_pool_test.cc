// TieredStatePool (issue 13 item 4): the rows tiered sequences keep their device state in. A row
// starts empty (maps -1, counts and cursors 0, no previous query), keeps what kernels wrote while
// the pool grows, and starts empty again when a new sequence takes it back.
#include "engine/runtime/cuda/tiered_state_pool.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/model/synthetic_model.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::cuda {
namespace {

template <typename T>
std::vector<T> Read(const T* device, size_t n) {
  std::vector<T> host(n);
  EXPECT_EQ(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

template <typename T>
void Write(T* device, const std::vector<T>& host) {
  EXPECT_EQ(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
}

class TieredStatePoolTest : public kernels::testing::GpuTest {};

TEST_F(TieredStatePoolTest, RowsStartEmptyAndKeepTheirStateAcrossGrowth) {
  auto config = SyntheticModelConfig("smollm2-135m");
  ASSERT_TRUE(config.ok()) << config.status();
  const kernels::TieredLayout layout{.slots = 6, .sink = 1, .window = 2};
  const int max_pages = 20;
  auto created = TieredStatePool::Create(*config, layout, 16, max_pages);
  ASSERT_TRUE(created.ok()) << created.status();
  TieredStatePool& pool = **created;
  const int H = config->n_kv_heads, S = layout.slots, layer = config->n_layers - 1;

  std::vector<int> rows;
  for (int i = 0; i < 3; ++i) {
    auto row = pool.Acquire();
    ASSERT_TRUE(row.ok()) << row.status();
    rows.push_back(*row);
  }
  EXPECT_EQ(rows, (std::vector<int>{0, 1, 2}));
  const int first_capacity = pool.capacity();

  // Row 1's maps, counters and query flag as kernels would leave them.
  auto mark = [&](int row) {
    const kernels::ResidencyState r = pool.residency(layer, nullptr);
    std::vector<int32_t> slots(S);
    for (int s = 0; s < S; ++s) slots[s] = 100 * row + s;
    Write(r.slot_page + r.Unit(row, H - 1, H) * S, slots);
    Write(r.n_pages + r.Unit(row, 0, H), std::vector<int32_t>{7});
    Write(pool.has_last_q(layer) + row, std::vector<uint8_t>{1});
    Write(pool.counters(2) + row, std::vector<int32_t>{9});
  };
  mark(1);
  // More rows than the pool held: it grows, and row 1 keeps its state at its new address.
  while (pool.capacity() == first_capacity) {
    auto row = pool.Acquire();
    ASSERT_TRUE(row.ok()) << row.status();
    rows.push_back(*row);
  }
  EXPECT_EQ(pool.rows_in_use(), static_cast<int>(rows.size()));
  {
    const kernels::ResidencyState r = pool.residency(layer, nullptr);
    const std::vector<int32_t> slots = Read(r.slot_page + r.Unit(1, H - 1, H) * S, S);
    EXPECT_EQ(slots[0], 100);
    EXPECT_EQ(slots[S - 1], 100 + S - 1);
    EXPECT_EQ(Read(r.n_pages + r.Unit(1, 0, H), 1)[0], 7);
    EXPECT_EQ(Read(pool.has_last_q(layer) + 1, 1)[0], 1);
    EXPECT_EQ(Read(pool.counters(2) + 1, 1)[0], 9);
    // Its neighbours were not touched.
    EXPECT_EQ(Read(r.slot_page + r.Unit(2, 0, H) * S, S), std::vector<int32_t>(S, -1));
    EXPECT_EQ(Read(pool.counters(2), 1)[0], 0);
  }
  auto counters = pool.ReadCounters();
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ((*counters)[2 * pool.capacity() + 1], 9);

  // A finished sequence's row goes to the next one empty.
  pool.Release(1);
  auto again = pool.Acquire();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 1);
  const kernels::ResidencyState r = pool.residency(layer, nullptr);
  EXPECT_EQ(Read(r.slot_page + r.Unit(1, H - 1, H) * S, S), std::vector<int32_t>(S, -1));
  EXPECT_EQ(Read(r.page_slot + r.Unit(1, 0, H) * max_pages, max_pages),
            std::vector<int32_t>(max_pages, -1));
  EXPECT_EQ(Read(r.n_pages + r.Unit(1, 0, H), 1)[0], 0);
  EXPECT_EQ(Read(pool.has_last_q(layer) + 1, 1)[0], 0);
  EXPECT_EQ(Read(pool.counters(2) + 1, 1)[0], 0);
}

}  // namespace
}  // namespace kvserve::cuda
