#include "engine/kv/residency_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace kvserve {
namespace {

constexpr BudgetLayout kLayout{.slots = 8, .sink = 2, .window = 3};  // 3 retrieved

std::set<int32_t> Resident(const ResidencyMap& m) {
  const auto pages = m.ResidentPages();
  return {pages.begin(), pages.end()};
}

TEST(ResidencyMapTest, SinkAndWindowArePlacedAndTheWindowRotatesFifo) {
  ResidencyMap m(kLayout);
  const auto placed = m.Extend(4);  // pages 0,1 sink; 2,3 window
  ASSERT_EQ(placed.size(), 4u);
  EXPECT_EQ(m.slot_of(0), 0);
  EXPECT_EQ(m.slot_of(1), 1);
  EXPECT_EQ(m.slot_of(2), 5);
  EXPECT_EQ(m.slot_of(3), 6);
  EXPECT_EQ(m.CheckInvariants(), "");
  m.Extend(6);  // page 4 takes the last free window slot, page 5 evicts page 2
  EXPECT_EQ(m.slot_of(4), 7);
  EXPECT_EQ(m.slot_of(5), 5);
  EXPECT_EQ(m.slot_of(2), -1);
  EXPECT_EQ(m.Candidates(), (std::vector<int32_t>{2}));
  EXPECT_EQ(m.CheckInvariants(), "");
}

TEST(ResidencyMapTest, SelectRecallsOnlyNewPagesAndReusesFreedSlots) {
  ResidencyMap m(kLayout);
  m.Extend(12);  // window = 9, 10, 11; candidates 2..8
  auto recalls = m.Select(std::vector<int32_t>{2, 5, 7});
  EXPECT_EQ(recalls.size(), 3u);
  EXPECT_EQ(m.CheckInvariants(), "");
  const int32_t slot5 = m.slot_of(5);
  recalls = m.Select(std::vector<int32_t>{3, 5, 8});
  ASSERT_EQ(recalls.size(), 2u);  // 5 stays where it is
  EXPECT_EQ(m.slot_of(5), slot5);
  EXPECT_EQ(m.slot_of(2), -1);
  EXPECT_EQ(m.slot_of(7), -1);
  EXPECT_EQ(Resident(m), (std::set<int32_t>{0, 1, 3, 5, 8, 9, 10, 11}));
  EXPECT_EQ(m.CheckInvariants(), "");
}

// Random decode-like sequences of steps: each head's resident set is always
// sink ∪ selected ∪ window, maps consistent, no duplicates.
TEST(ResidencyMapTest, RandomStepsKeepResidentSetSinkSelectedWindow) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const BudgetLayout layout{.slots = 4 + static_cast<int>(rng() % 12),
                              .sink = static_cast<int>(rng() % 3),
                              .window = 1 + static_cast<int>(rng() % 3)};
    if (layout.retrieved() < 0) continue;
    ResidencyMap m(layout);
    int pages = 1 + static_cast<int>(rng() % 5);
    m.Extend(pages);
    std::vector<int32_t> selected;
    for (int step = 0; step < 60; ++step) {
      if (rng() % 3 == 0) m.Extend(++pages);
      // Selected pages leaving candidacy (none can: candidates only grow) stay valid.
      auto candidates = m.Candidates();
      std::shuffle(candidates.begin(), candidates.end(), rng);
      candidates.resize(std::min<size_t>(candidates.size(), layout.retrieved()));
      selected.assign(candidates.begin(), candidates.end());
      std::sort(selected.begin(), selected.end());
      const auto before = Resident(m);
      const auto recalls = m.Select(selected);
      for (const auto& r : recalls)
        EXPECT_FALSE(before.count(r.page)) << "recalled a resident page";
      ASSERT_EQ(m.CheckInvariants(), "") << "trial " << trial << " step " << step;
      std::set<int32_t> expect(selected.begin(), selected.end());
      for (int p = 0; p < std::min(layout.sink, pages); ++p) expect.insert(p);
      for (int p = std::max(layout.sink, pages - layout.window); p < pages; ++p) expect.insert(p);
      ASSERT_EQ(Resident(m), expect) << "trial " << trial << " step " << step;
    }
  }
}

}  // namespace
}  // namespace kvserve
