#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// One unit's residency maps as arrays (ResidencyState's rows): slot_page [slots], page_slot
// [>= the pages it will know], its page count and window cursor. engine/kv's ResidencyMap keeps
// its state in these and calls the functions below, the device kernels' twins.
struct ResidencyRow {
  int32_t* slot_page = nullptr;
  int32_t* page_slot = nullptr;
  int32_t* n_pages = nullptr;
  int32_t* next_window = nullptr;
};

struct PagePlacement {
  int32_t page;
  int32_t slot;
};

// The unit now has `n_pages` logical pages (more than before): the first `sink` pages take the
// sink slots, the newer ones window slots, and once the window is full each new page takes the
// slot of the oldest window page (FIFO), which becomes host-only and selectable. page_slot must
// have room for n_pages entries. Returns every placement in order (a later one may displace an
// earlier one).
std::vector<PagePlacement> ExtendResidency(const TieredLayout& layout, const ResidencyRow& row,
                                           int n_pages);

// The first page of the recent window: candidates are [sink, WindowStart).
int WindowStart(const TieredLayout& layout, int n_pages);

// Makes `selected` (ascending, distinct candidates, at most retrieved()) the retrieved set: pages
// already resident stay in their slots, the others take the slots of the pages that fell out, in
// page and slot order. Returns the placements to recall (only pages not resident before).
std::vector<PagePlacement> SelectResidency(const TieredLayout& layout, const ResidencyRow& row,
                                           std::span<const int32_t> selected);

// LaunchExtendResidency's twin on host memory (placements listed in slot order: the slots whose
// page is new to the maps).
void ExtendResidencyLists(const ExtendResidencyParams& params);

}  // namespace kvserve::kernels::reference
