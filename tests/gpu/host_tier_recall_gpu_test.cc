// The host tier on the device against the CPU twins, bit for bit: pinned mapped memory that
// kernels write (a step's new rows, whole pages and single decode rows, written on a copy stream
// after an event behind the rows' arrival on the compute stream)
// and gather from (the zero-copy recall of listed (sequence, KV head, page) units into budget
// slots, full and partial pages, a grid smaller than the list), and the attention page lists
// emitted from residency (sparse and dense sequences side by side). head_dim 64 and 128, page
// sizes 16 and 32.
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/page_recall.h"
#include "kernels/host_tier.h"
#include "kernels/page_recall.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size)
using TierCase = std::tuple<int, int>;

class HostTierRecallGpuTest : public testing::GpuTestWithParam<TierCase> {
 protected:
  PagedKvLayout Layout() const {
    const auto [head_dim, page_size] = GetParam();
    return PagedKvLayout{.n_kv_heads = 3, .page_size = page_size, .head_dim = head_dim};
  }
};

std::string Describe(const TierCase& c) {
  const auto [head_dim, page_size] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size;
  return name.str();
}

bool SameBits(const std::vector<Bf16>& a, const std::vector<Bf16>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(Bf16)) == 0;
}

constexpr int kArenaPages = 10;
constexpr int kTierPages = 12;

TEST_P(HostTierRecallGpuTest, NewRowsReachTheHostTierOnACopyStream) {
  const PagedKvLayout l = Layout();
  std::mt19937 rng(l.head_dim + l.page_size);
  const std::vector<Bf16> arena = testing::RandomBf16(kArenaPages * l.PageElements(), rng);
  DeviceBuffer<Bf16> d_staged(arena);
  DeviceBuffer<Bf16> d_arena(std::vector<Bf16>(arena.size()));
  HostTierMemory tier;
  ASSERT_CUDA_OK(AllocateHostTier(l, kTierPages, &tier));
  EXPECT_EQ(tier.bytes, HostTierBytes(l, kTierPages));
  const std::vector<Bf16> before = testing::RandomBf16(kTierPages * l.PageElements(), rng);
  std::memcpy(tier.host, before.data(), tier.bytes);

  // A prompt's full page, a decode row, a partial prompt page.
  const std::vector<PageRowCopy> copies = {
      {.src_page = 2, .dst_page = 5, .first_row = 0, .rows = l.page_size},
      {.src_page = 7, .dst_page = 0, .first_row = 3, .rows = 1},
      {.src_page = 0, .dst_page = 11, .first_row = 0, .rows = 5}};
  DeviceBuffer<PageRowCopy> d_copies(copies);
  // The rows reach the arena on the compute stream (the step's append); the copy stream waits
  // for them by an event, as the backend orders it (the reverse-order run defers both streams).
  cudaStream_t compute = nullptr;
  cudaStream_t copy_stream = nullptr;
  cudaEvent_t appended = nullptr;
  ASSERT_CUDA_OK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
  ASSERT_CUDA_OK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
  ASSERT_CUDA_OK(cudaEventCreateWithFlags(&appended, cudaEventDisableTiming));
  ASSERT_CUDA_OK(cudaMemcpyAsync(d_arena.data(), d_staged.data(), arena.size() * sizeof(Bf16),
                                 cudaMemcpyDeviceToDevice, compute));
  ASSERT_CUDA_OK(cudaEventRecord(appended, compute));
  ASSERT_CUDA_OK(cudaStreamWaitEvent(copy_stream, appended, 0));
  ASSERT_CUDA_OK(LaunchHostTierWrite({.src_pages = d_arena.data(),
                                      .dst_pages = tier.device,
                                      .layout = l,
                                      .copies = d_copies.data(),
                                      .num_copies = static_cast<int>(copies.size())},
                                     copy_stream));
  ASSERT_CUDA_OK(cudaStreamSynchronize(copy_stream));
  std::vector<Bf16> expected = before;
  reference::HostTierWrite({.src_pages = arena.data(),
                            .dst_pages = expected.data(),
                            .layout = l,
                            .copies = copies.data(),
                            .num_copies = static_cast<int>(copies.size())});
  testing::ExpectBitsEqual(std::vector<Bf16>(tier.host, tier.host + expected.size()), expected,
                           Describe(GetParam()));
  EXPECT_FALSE(SameBits(expected, before));  // the copies changed something

  // Unaligned pages are refused.
  EXPECT_EQ(LaunchHostTierWrite({.src_pages = d_arena.data() + 1,
                                 .dst_pages = tier.device,
                                 .layout = l,
                                 .copies = d_copies.data(),
                                 .num_copies = 1},
                                copy_stream),
            cudaErrorInvalidValue);
  ASSERT_CUDA_OK(cudaEventDestroy(appended));
  ASSERT_CUDA_OK(cudaStreamDestroy(compute));
  ASSERT_CUDA_OK(cudaStreamDestroy(copy_stream));
  ASSERT_CUDA_OK(FreeHostTier(&tier));
  EXPECT_EQ(tier.host, nullptr);
}

TEST_P(HostTierRecallGpuTest, RecallGathersListedPagesIntoTheirSlots) {
  const PagedKvLayout l = Layout();
  const int n_kv = l.n_kv_heads;
  const int num_seqs = 2;
  const int slots = 4;
  const int capacity = 3;
  std::mt19937 rng(7 * l.head_dim + l.page_size);
  HostTierMemory tier;
  ASSERT_CUDA_OK(AllocateHostTier(l, kTierPages, &tier));
  const std::vector<Bf16> host = testing::RandomBf16(kTierPages * l.PageElements(), rng);
  std::memcpy(tier.host, host.data(), tier.bytes);
  const std::vector<Bf16> arena = testing::RandomBf16(kArenaPages * l.PageElements(), rng);
  DeviceBuffer<Bf16> d_arena(arena);
  // Sequence s's logical page j lives in host page table[s][j]; its budget slots in arena pages.
  const int stride = 6;
  const std::vector<int32_t> host_table = {3, 8, 1, 10, 4, 6, /**/ 0, 2, 5, 7, 9, 11};
  const std::vector<int32_t> budget = {9, 1, 4, 6, /**/ 0, 2, 3, 8};
  // Sequence 1's last page is partial: only 2 rows are in the host tier.
  const std::vector<int32_t> host_lens = {6 * l.page_size, 4 * l.page_size + 2};
  // Units: (0,0) two pages, (0,1) none, (0,2) one, (1,0) the partial page, (1,1) three, (1,2) none.
  std::vector<int32_t> counts = {2, 0, 1, 1, 3, 0};
  std::vector<int32_t> pages(num_seqs * n_kv * capacity, -7), list_slots(pages.size(), -7);
  auto put = [&](int unit, int i, int page, int slot) {
    pages[unit * capacity + i] = page;
    list_slots[unit * capacity + i] = slot;
  };
  put(0, 0, 1, 2);
  put(0, 1, 5, 0);
  put(2, 0, 3, 3);
  put(3, 0, 4, 1);
  put(4, 0, 0, 0);
  put(4, 1, 2, 3);
  put(4, 2, 3, 2);
  DeviceBuffer<int32_t> d_table(host_table), d_budget(budget), d_lens(host_lens), d_counts(counts),
      d_pages(pages), d_slots(list_slots);
  for (int max_blocks : {0, 2}) {
    DeviceBuffer<Bf16> d_out(arena);
    const RecallParams params{.host = {.pages = tier.device,
                                       .layout = l,
                                       .page_table = d_table.data(),
                                       .page_table_stride = stride},
                              .device_pages = d_out.data(),
                              .budget_pages = d_budget.data(),
                              .slots = slots,
                              .host_lens = d_lens.data(),
                              .num_seqs = num_seqs,
                              .list = {.counts = d_counts.data(),
                                       .pages = d_pages.data(),
                                       .slots = d_slots.data(),
                                       .capacity = capacity},
                              .max_blocks = max_blocks};
    ASSERT_CUDA_OK(LaunchRecallPages(params, nullptr));
    std::vector<Bf16> expected = arena;
    reference::RecallPages({.host = {.pages = tier.host,
                                     .layout = l,
                                     .page_table = host_table.data(),
                                     .page_table_stride = stride},
                            .device_pages = expected.data(),
                            .budget_pages = budget.data(),
                            .slots = slots,
                            .host_lens = host_lens.data(),
                            .num_seqs = num_seqs,
                            .list = {.counts = counts.data(),
                                     .pages = pages.data(),
                                     .slots = list_slots.data(),
                                     .capacity = capacity}});
    testing::ExpectBitsEqual(d_out.ToHost(), expected,
                             Describe(GetParam()) + " blocks " + std::to_string(max_blocks));
    EXPECT_FALSE(SameBits(expected, arena));
  }
  ASSERT_CUDA_OK(FreeHostTier(&tier));
}

TEST_P(HostTierRecallGpuTest, PageListsFollowResidencyOrTheDenseTable) {
  const PagedKvLayout l = Layout();
  const int n_kv = 2;
  const TieredLayout layout{.slots = 4, .sink = 1, .window = 1};
  const int capacity = 5;
  const int p = l.page_size;
  // Sequence 0 sparse (9 pages, partial last), sequence 1 dense (3 pages), sequence 2 empty.
  const std::vector<int32_t> lens = {8 * p + 3, 2 * p + 1, 0};
  const std::vector<int32_t> slot_page = {0,  5,  -1, 8,  /**/ 0, -1, 2,  8,   //
                                          -1, -1, -1, -1, -1,     -1, -1, -1,  //
                                          -1, -1, -1, -1, -1,     -1, -1, -1};
  const std::vector<int32_t> budget = {10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33};
  const int dense_stride = 4;
  const std::vector<int32_t> dense = {-1, -1, -1, -1, 40, 41, 42, -1, -1, -1, -1, -1};
  DeviceBuffer<int32_t> d_lens(lens), d_slot_page(slot_page), d_budget(budget), d_dense(dense);
  const int units = 3 * n_kv;
  DeviceBuffer<int32_t> d_counts(units), d_pages(units * capacity), d_rows(units * capacity);
  EmitPageListsParams params{.kv_lens = d_lens.data(),
                             .num_seqs = 3,
                             .n_kv_heads = n_kv,
                             .page_size = p,
                             .layout = layout,
                             .slot_page = d_slot_page.data(),
                             .budget_pages = d_budget.data(),
                             .dense_table = d_dense.data(),
                             .dense_stride = dense_stride,
                             .counts = d_counts.data(),
                             .pages = d_pages.data(),
                             .rows = d_rows.data(),
                             .capacity = capacity};
  ASSERT_CUDA_OK(cudaMemset(d_pages.data(), 0xff, units * capacity * sizeof(int32_t)));
  ASSERT_CUDA_OK(cudaMemset(d_rows.data(), 0xff, units * capacity * sizeof(int32_t)));
  ASSERT_CUDA_OK(LaunchEmitPageLists(params, nullptr));
  std::vector<int32_t> counts(units), pages(units * capacity, -1), rows(units * capacity, -1);
  reference::EmitPageLists({.kv_lens = lens.data(),
                            .num_seqs = 3,
                            .n_kv_heads = n_kv,
                            .page_size = p,
                            .layout = layout,
                            .slot_page = slot_page.data(),
                            .budget_pages = budget.data(),
                            .dense_table = dense.data(),
                            .dense_stride = dense_stride,
                            .counts = counts.data(),
                            .pages = pages.data(),
                            .rows = rows.data(),
                            .capacity = capacity});
  EXPECT_EQ(d_counts.ToHost(), counts);
  EXPECT_EQ(counts, (std::vector<int32_t>{3, 3, 3, 3, 0, 0}));
  EXPECT_EQ(d_pages.ToHost(), pages);
  EXPECT_EQ(d_rows.ToHost(), rows);
  // The sparse unit's partial page (page 8) has 3 rows; the dense sequence's last has 1.
  EXPECT_EQ(rows[2], 3);
  EXPECT_EQ(pages[2 * capacity + 2], 42);
  EXPECT_EQ(rows[2 * capacity + 2], 1);
  params.capacity = 3;  // below the slots
  EXPECT_EQ(LaunchEmitPageLists(params, nullptr), cudaErrorInvalidValue);
}

INSTANTIATE_TEST_SUITE_P(Shapes, HostTierRecallGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
