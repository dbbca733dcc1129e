#include "engine/kv/residency_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvserve {
namespace {

kernels::TieredLayout Kernel(const BudgetLayout& l) {
  return {.slots = l.slots, .sink = l.sink, .window = l.window};
}

}  // namespace

ResidencyMap::ResidencyMap(BudgetLayout layout) : layout_(layout), slot_page_(layout.slots, -1) {}

int ResidencyMap::WindowStart() const {
  return kernels::reference::WindowStart(Kernel(layout_), n_pages_);
}

kernels::reference::ResidencyRow ResidencyMap::Row() {
  return {.slot_page = slot_page_.data(),
          .page_slot = page_slot_.data(),
          .n_pages = &n_pages_,
          .next_window = &next_window_slot_};
}

std::vector<ResidencyMap::Placement> ResidencyMap::Extend(int n_pages) {
  if (n_pages > n_pages_) page_slot_.resize(n_pages, -1);
  return kernels::reference::ExtendResidency(Kernel(layout_), Row(), n_pages);
}

std::vector<int32_t> ResidencyMap::Candidates() const {
  std::vector<int32_t> pages;
  for (int32_t p = layout_.sink; p < WindowStart(); ++p) pages.push_back(p);
  return pages;
}

std::vector<ResidencyMap::Placement> ResidencyMap::Select(std::span<const int32_t> selected) {
  return kernels::reference::SelectResidency(Kernel(layout_), Row(), selected);
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
