#include "engine/kv/page_pool.h"

#include <algorithm>

namespace kvserve {

PagePool::PagePool(KvPageShape shape, int64_t max_pages)
    : shape_(shape),
      max_pages_(std::clamp<int64_t>(max_pages, 0, kUnbounded)),
      slabs_(std::make_unique<std::unique_ptr<float[]>[]>(slab_count())) {}

int64_t PagePool::PagesForBytes(const KvPageShape& shape, int64_t bytes, size_t element_bytes) {
  return bytes <= 0 ? 0 : bytes / static_cast<int64_t>(shape.bytes(element_bytes));
}

bool PagePool::Allocate(int64_t n, std::vector<int32_t>* pages) {
  if (n <= 0) return true;
  if (n > free_pages()) return false;
  while (static_cast<int64_t>(free_.size()) < n) {
    // Grow by one slab; ids are handed out lowest first.
    const int32_t first = static_cast<int32_t>(slabs_used_) * kSlabPages;
    slabs_[slabs_used_++] = std::make_unique_for_overwrite<float[]>(kSlabPages * shape_.floats());
    for (int32_t id = first + kSlabPages - 1; id >= first; --id) free_.push_back(id);
  }
  for (int64_t i = 0; i < n; ++i) {
    pages->push_back(free_.back());
    free_.pop_back();
  }
  used_.fetch_add(n, std::memory_order_relaxed);
  return true;
}

void PagePool::Free(std::span<const int32_t> pages) {
  free_.insert(free_.end(), pages.begin(), pages.end());
  used_.fetch_sub(static_cast<int64_t>(pages.size()), std::memory_order_relaxed);
}

}  // namespace kvserve
