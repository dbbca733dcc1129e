#include "engine/kv/residency_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvserve {

ResidencyMap::ResidencyMap(BudgetLayout layout) : layout_(layout), slot_page_(layout.slots, -1) {}

int ResidencyMap::WindowStart() const { return std::max(layout_.sink, n_pages_ - layout_.window); }

std::vector<ResidencyMap::Placement> ResidencyMap::Extend(int n_pages) {
  std::vector<Placement> placed;
  const int first_window_slot = layout_.sink + layout_.retrieved();
  for (int32_t page = n_pages_; page < n_pages; ++page) {
    page_slot_.push_back(-1);
    ++n_pages_;
    int32_t slot;
    if (page < layout_.sink) {
      slot = page;
    } else {
      // The window slots rotate: the oldest window page (if any) leaves for the host.
      slot = first_window_slot + next_window_slot_;
      next_window_slot_ = (next_window_slot_ + 1) % layout_.window;
      if (const int32_t old = slot_page_[slot]; old >= 0) page_slot_[old] = -1;
    }
    slot_page_[slot] = page;
    page_slot_[page] = slot;
    placed.push_back({page, slot});
  }
  return placed;
}

std::vector<int32_t> ResidencyMap::Candidates() const {
  std::vector<int32_t> pages;
  for (int32_t p = layout_.sink; p < WindowStart(); ++p) pages.push_back(p);
  return pages;
}

std::vector<ResidencyMap::Placement> ResidencyMap::Select(std::span<const int32_t> selected) {
  const int first = layout_.sink;
  const int last = layout_.sink + layout_.retrieved();
  // Free the retrieved slots whose page was not selected.
  std::vector<int32_t> free_slots;
  for (int32_t slot = first; slot < last; ++slot) {
    const int32_t page = slot_page_[slot];
    if (page >= 0 && std::binary_search(selected.begin(), selected.end(), page)) continue;
    if (page >= 0) page_slot_[page] = -1;
    slot_page_[slot] = -1;
    free_slots.push_back(slot);
  }
  std::vector<Placement> recalls;
  size_t next = 0;
  for (const int32_t page : selected) {
    if (page_slot_[page] >= 0) continue;
    const int32_t slot = free_slots[next++];
    slot_page_[slot] = page;
    page_slot_[page] = slot;
    recalls.push_back({page, slot});
  }
  return recalls;
}

std::vector<int32_t> ResidencyMap::ResidentPages() const {
  std::vector<int32_t> pages;
  for (const int32_t p : slot_page_) {
    if (p >= 0) pages.push_back(p);
  }
  return pages;
}

std::string ResidencyMap::CheckInvariants() const {
  std::vector<int> seen(n_pages_, 0);
  for (int32_t slot = 0; slot < layout_.slots; ++slot) {
    const int32_t page = slot_page_[slot];
    if (page < 0) continue;
    if (page >= n_pages_)
      return absl::StrCat("slot ", slot, " holds page ", page, " beyond the end");
    if (seen[page]++) return absl::StrCat("page ", page, " is resident twice");
    if (page_slot_[page] != slot) {
      return absl::StrCat("page ", page, " is in slot ", slot, " but maps to ", page_slot_[page]);
    }
    const bool sink = page < layout_.sink;
    const bool window = page >= WindowStart();
    const bool sink_slot = slot < layout_.sink;
    const bool window_slot = slot >= layout_.sink + layout_.retrieved();
    if (sink != sink_slot || (window && !window_slot) || (!window && !sink && window_slot)) {
      return absl::StrCat("page ", page, " is in the wrong region (slot ", slot, ")");
    }
  }
  for (int32_t page = 0; page < n_pages_; ++page) {
    const bool must = page < layout_.sink || page >= WindowStart();
    if (page_slot_[page] >= 0 && slot_page_[page_slot_[page]] != page) {
      return absl::StrCat("page ", page, " maps to slot ", page_slot_[page], " holding another");
    }
    if (must && page_slot_[page] < 0) {
      return absl::StrCat("sink/window page ", page, " is not resident");
    }
  }
  return "";
}

}  // namespace kvserve
