#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/cpu_reference/page_residency.h"

namespace kvserve {

// How a (sequence, layer)'s accelerator budget of `slots` pages splits (research/freekv.md §4.1):
// slots [0, sink) hold the first pages, [sink, sink + retrieved) the selected ones, the last
// `window` slots the most recent pages (the newest one partial).
struct BudgetLayout {
  int slots = 0;
  int sink = 0;
  int window = 0;
  int retrieved() const { return slots - sink - window; }
};

// Which logical page each budget slot of one KV head holds (slot → page) and where each page is
// resident (page → slot, -1 when only on the host). Heads keep separate maps: each selects its own
// pages, in the same physical slots.
class ResidencyMap {
 public:
  // The maps' arithmetic is the device kernels' twin (kernels/cpu_reference/page_residency.h).
  using Placement = kernels::reference::PagePlacement;

  explicit ResidencyMap(BudgetLayout layout);

  const BudgetLayout& layout() const { return layout_; }
  int n_pages() const { return n_pages_; }
  int32_t slot_of(int32_t page) const { return page < n_pages_ ? page_slot_[page] : -1; }
  int32_t page_in(int32_t slot) const { return slot_page_[slot]; }

  // The sequence now has `n_pages` logical pages (more than before): the first `sink` pages take
  // the sink slots, the newest take window slots, and once the window is full each new page takes
  // the slot of the oldest window page (FIFO), which becomes host-only and selectable. Returns
  // the placements whose slot must be filled.
  std::vector<Placement> Extend(int n_pages);

  // Pages selection may choose from: neither sink nor in the window, [sink, n_pages - window).
  std::vector<int32_t> Candidates() const;

  // Makes `selected` (ascending, distinct candidates, at most retrieved()) the retrieved set:
  // pages already resident stay in their slots, the others replace pages that fell out. Returns
  // the placements to recall (incremental: only pages not resident before).
  std::vector<Placement> Select(std::span<const int32_t> selected);

  // Resident pages, by slot order (empty slots skipped).
  std::vector<int32_t> ResidentPages() const;

  // Invariants: resident = sink ∪ retrieved ∪ window, maps inverse of each other, no duplicates.
  // Empty when they hold, else what is wrong.
  std::string CheckInvariants() const;

 private:
  int WindowStart() const;  // first page of the recent window
  kernels::reference::ResidencyRow Row();

  BudgetLayout layout_;
  int32_t n_pages_ = 0;
  std::vector<int32_t> slot_page_;  // [slots], -1 = empty
  std::vector<int32_t> page_slot_;  // [n_pages], -1 = host only
  int32_t next_window_slot_ = 0;    // FIFO cursor over the window slots
};

}  // namespace kvserve
