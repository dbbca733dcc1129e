// Residency and page selection on the device against the CPU twins (the CPU policy's
// ResidencyMap and scoring), exactly: several decode steps of a batch with a dense sequence and
// sparse ones crossing page boundaries (window rotation, a sequence turning sparse mid-run), a
// new query each step, masks with and without inversion, both group aggregations, and digests
// and queries on a coarse grid so that many pages tie (ties go to the earlier page on both
// sides). Every step compares the placement and recall lists and the whole residency state.
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/ceil_div.h"
#include "kernels/cpu_reference/page_residency.h"
#include "kernels/cpu_reference/page_select.h"
#include "kernels/page_select.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (aggregation, tie levels of the digests: values are multiples of 1/levels)
using SelectCase = std::tuple<PageScoreAggregation, int>;

class PageSelectGpuTest : public testing::GpuTestWithParam<SelectCase> {};

std::string Describe(const SelectCase& c) {
  const auto [aggregation, levels] = c;
  std::ostringstream name;
  name << (aggregation == PageScoreAggregation::kMean ? "mean" : "meansoftmax") << "_levels"
       << levels;
  return name.str();
}

template <typename T>
void Upload(DeviceBuffer<T>& d, const std::vector<T>& h) {
  ASSERT_EQ(cudaMemcpy(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
}

TEST_P(PageSelectGpuTest, ResidencyAndRecallListsEqualTheCpuPolicyStepByStep) {
  const auto [aggregation, levels] = GetParam();
  const int n_kv = 2, group = 3, n_heads = n_kv * group, d = 64, p = 16;
  const TieredLayout layout{.slots = 8, .sink = 1, .window = 2};
  const int max_pages = 48;
  const int num_seqs = 3;
  const int units = num_seqs * n_kv;
  std::mt19937 rng(levels * 31 + static_cast<int>(aggregation));
  // Digests: row state row * max_pages + page, hi >= lo on a grid of 1/levels.
  std::uniform_int_distribution<int> grid(-2 * levels, 2 * levels);
  std::uniform_int_distribution<int> spread(0, levels);
  std::vector<float> digests(static_cast<size_t>(num_seqs) * max_pages * n_kv * 2 * d);
  for (size_t at = 0; at < digests.size(); at += 2 * d) {
    for (int c = 0; c < d; ++c) {
      const float center = static_cast<float>(grid(rng)) / levels;
      const float half = static_cast<float>(spread(rng)) / levels;
      digests[at + c] = center + half;
      digests[at + d + c] = center - half;
    }
  }
  // Each sequence's maps and digests at the state row a pool gave it, not its launch index.
  const std::vector<int32_t> rows = {2, 0, 1};
  // Lengths: dense throughout, sparse from the start, turning sparse at step 2.
  std::vector<int32_t> lens = {3 * p + 5, 20 * p + 14, 8 * p - 2};
  // Residency state, as a fresh budget: empty slots, nothing known.
  std::vector<int32_t> slot_page(units * layout.slots, -1), page_slot(units * max_pages, -1),
      n_pages(units, 0), cursor(units, 0);
  DeviceBuffer<float> d_digests(digests);
  DeviceBuffer<int32_t> d_rows(rows), d_lens(lens), d_slot_page(slot_page), d_page_slot(page_slot),
      d_n_pages(n_pages), d_cursor(cursor);
  const int capacity = layout.slots;
  DeviceBuffer<int32_t> d_counts(units), d_pages(units * capacity), d_slots(units * capacity);
  DeviceBuffer<uint8_t> d_mask(units);
  DeviceBuffer<Bf16> d_q(static_cast<size_t>(num_seqs) * n_heads * d);
  const ResidencyState device_state{.slot_page = d_slot_page.data(),
                                    .page_slot = d_page_slot.data(),
                                    .max_pages = max_pages,
                                    .n_pages = d_n_pages.data(),
                                    .next_window = d_cursor.data(),
                                    .state_rows = d_rows.data()};
  const ResidencyState host_state{.slot_page = slot_page.data(),
                                  .page_slot = page_slot.data(),
                                  .max_pages = max_pages,
                                  .n_pages = n_pages.data(),
                                  .next_window = cursor.data(),
                                  .state_rows = rows.data()};
  int recalled = 0;
  for (int step = 0; step < 6; ++step) {
    const std::string at = Describe(GetParam()) + " step " + std::to_string(step);
    for (int s = 0; s < num_seqs; ++s) lens[s] += step == 2 ? p : 1;  // step 2 adds a page
    Upload(d_lens, lens);
    std::vector<int32_t> counts(units, -1), pages(units * capacity, -1),
        slots(units * capacity, -1);
    ASSERT_CUDA_OK(cudaMemset(d_pages.data(), 0xff, units * capacity * sizeof(int32_t)));
    ASSERT_CUDA_OK(cudaMemset(d_slots.data(), 0xff, units * capacity * sizeof(int32_t)));
    const PlacementList device_list{.counts = d_counts.data(),
                                    .pages = d_pages.data(),
                                    .slots = d_slots.data(),
                                    .capacity = capacity};
    const PlacementList host_list{.counts = counts.data(),
                                  .pages = pages.data(),
                                  .slots = slots.data(),
                                  .capacity = capacity};

    ExtendResidencyParams extend{.kv_lens = d_lens.data(),
                                 .num_seqs = num_seqs,
                                 .n_kv_heads = n_kv,
                                 .page_size = p,
                                 .layout = layout,
                                 .residency = device_state,
                                 .placements = device_list};
    ASSERT_CUDA_OK(LaunchExtendResidency(extend, nullptr));
    extend.kv_lens = lens.data();
    extend.residency = host_state;
    extend.placements = host_list;
    reference::ExtendResidencyLists(extend);
    EXPECT_EQ(d_counts.ToHost(), counts) << at;
    EXPECT_EQ(d_pages.ToHost(), pages) << at;
    EXPECT_EQ(d_slots.ToHost(), slots) << at;

    // A new query; a mask (every unit at step 0, then random, sometimes inverted).
    std::vector<Bf16> q(static_cast<size_t>(num_seqs) * n_heads * d);
    for (Bf16& v : q) v = ToBf16(static_cast<float>(grid(rng)) / 4.0f);
    Upload(d_q, q);
    std::vector<uint8_t> mask(units);
    for (uint8_t& m : mask) m = step == 0 ? 1 : static_cast<uint8_t>(rng() % 2);
    Upload(d_mask, mask);
    SelectPagesParams select{.q = d_q.data(),
                             .q_row_stride = n_heads * d,
                             .num_seqs = num_seqs,
                             .n_heads = n_heads,
                             .digests = {.data = d_digests.data(),
                                         .row_pages = max_pages,
                                         .n_kv_heads = n_kv,
                                         .head_dim = d},
                             .kv_lens = d_lens.data(),
                             .page_size = p,
                             .layout = layout,
                             .residency = device_state,
                             .mask = d_mask.data(),
                             .invert = step % 2 == 1,
                             .aggregation = aggregation,
                             .recalls = device_list};
    ASSERT_CUDA_OK(LaunchSelectPages(select, nullptr));
    select.q = q.data();
    select.digests.data = digests.data();
    select.kv_lens = lens.data();
    select.residency = host_state;
    select.mask = mask.data();
    select.recalls = host_list;
    reference::SelectPages(select);
    EXPECT_EQ(d_counts.ToHost(), counts) << at;
    EXPECT_EQ(d_pages.ToHost(), pages) << at;
    EXPECT_EQ(d_slots.ToHost(), slots) << at;
    EXPECT_EQ(d_slot_page.ToHost(), slot_page) << at;
    EXPECT_EQ(d_page_slot.ToHost(), page_slot) << at;
    EXPECT_EQ(d_n_pages.ToHost(), n_pages) << at;
    EXPECT_EQ(d_cursor.ToHost(), cursor) << at;
    for (int c : counts) recalled += c;
  }
  EXPECT_GT(recalled, 0);  // the selections did move pages
  // The dense sequence never got a budget; the sparse ones know their pages at their own rows.
  for (int h = 0; h < n_kv; ++h) {
    EXPECT_EQ(n_pages[rows[0] * n_kv + h], 0);
    EXPECT_EQ(n_pages[rows[1] * n_kv + h], CeilDiv(lens[1], p));
  }
}

INSTANTIATE_TEST_SUITE_P(Aggregations, PageSelectGpuTest,
                         ::testing::Combine(::testing::Values(PageScoreAggregation::kMeanSoftmax,
                                                              PageScoreAggregation::kMean),
                                            ::testing::Values(2, 64)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
