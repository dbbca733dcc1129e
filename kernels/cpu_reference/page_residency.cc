#include "kernels/cpu_reference/page_residency.h"

#include <algorithm>

#include "kernels/ceil_div.h"

namespace kvserve::kernels::reference {

int WindowStart(const TieredLayout& layout, int n_pages) {
  return std::max(layout.sink, n_pages - layout.window);
}

std::vector<PagePlacement> ExtendResidency(const TieredLayout& layout, const ResidencyRow& row,
                                           int n_pages) {
  std::vector<PagePlacement> placed;
  const int first_window_slot = layout.sink + layout.retrieved();
  for (int32_t page = *row.n_pages; page < n_pages; ++page) {
    row.page_slot[page] = -1;
    ++*row.n_pages;
    int32_t slot;
    if (page < layout.sink) {
      slot = page;
    } else {
      // The window slots rotate: the oldest window page (if any) leaves for the host.
      slot = first_window_slot + *row.next_window;
      *row.next_window = (*row.next_window + 1) % layout.window;
      if (const int32_t old = row.slot_page[slot]; old >= 0) row.page_slot[old] = -1;
    }
    row.slot_page[slot] = page;
    row.page_slot[page] = slot;
    placed.push_back({page, slot});
  }
  return placed;
}

std::vector<PagePlacement> SelectResidency(const TieredLayout& layout, const ResidencyRow& row,
                                           std::span<const int32_t> selected) {
  const int first = layout.sink;
  const int last = layout.sink + layout.retrieved();
  // Free the retrieved slots whose page was not selected.
  std::vector<int32_t> free_slots;
  for (int32_t slot = first; slot < last; ++slot) {
    const int32_t page = row.slot_page[slot];
    if (page >= 0 && std::binary_search(selected.begin(), selected.end(), page)) continue;
    if (page >= 0) row.page_slot[page] = -1;
    row.slot_page[slot] = -1;
    free_slots.push_back(slot);
  }
  std::vector<PagePlacement> recalls;
  size_t next = 0;
  for (const int32_t page : selected) {
    if (row.page_slot[page] >= 0) continue;
    const int32_t slot = free_slots[next++];
    row.slot_page[slot] = page;
    row.page_slot[page] = slot;
    recalls.push_back({page, slot});
  }
  return recalls;
}

void ExtendResidencyLists(const ExtendResidencyParams& p) {
  const ResidencyState& r = p.residency;
  const PlacementList& out = p.placements;
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    const int n_pages = CeilDiv(p.kv_lens[seq], p.page_size);
    for (int h = 0; h < p.n_kv_heads; ++h) {
      const size_t unit = static_cast<size_t>(seq) * p.n_kv_heads + h;
      const size_t state = r.Unit(seq, h, p.n_kv_heads);
      out.counts[unit] = 0;
      if (n_pages <= p.layout.slots) continue;  // dense
      const ResidencyRow row{.slot_page = r.slot_page + state * p.layout.slots,
                             .page_slot = r.page_slot + state * r.max_pages,
                             .n_pages = r.n_pages + state,
                             .next_window = r.next_window + state};
      const int32_t before = *row.n_pages;
      ExtendResidency(p.layout, row, n_pages);
      // The slots holding a page the maps did not know before: their contents are new.
      int count = 0;
      for (int32_t slot = 0; slot < p.layout.slots; ++slot) {
        if (row.slot_page[slot] < before) continue;
        out.pages[unit * out.capacity + count] = row.slot_page[slot];
        out.slots[unit * out.capacity + count] = slot;
        ++count;
      }
      out.counts[unit] = count;
    }
  }
}

}  // namespace kvserve::kernels::reference
