#include "engine/kv/page_pool.h"

#include <algorithm>

namespace kvserve {

PagePool::PagePool(KvPageShape shape, int64_t max_pages, KvDtype dtype)
    : shape_(shape),
      max_pages_(std::clamp<int64_t>(max_pages, 0, kUnbounded)),
      own_store_(std::make_unique<KvPageStore>(dtype, shape.floats(), max_pages_)),
      store_(own_store_.get()) {}

PagePool::PagePool(KvPageShape shape, int64_t max_pages, KvPageStore* store)
    : shape_(shape), max_pages_(std::clamp<int64_t>(max_pages, 0, kUnbounded)), store_(store) {}

int64_t PagePool::PagesForBytes(const KvPageShape& shape, int64_t bytes, size_t element_bytes) {
  return bytes <= 0 ? 0 : bytes / static_cast<int64_t>(shape.bytes(element_bytes));
}

bool PagePool::Allocate(int64_t n, std::vector<int32_t>* pages) {
  if (n <= 0) return true;
  if (n > free_pages()) return false;
  while (static_cast<int64_t>(free_.size()) < n) {
    // Take a block of ids; they are handed out lowest first.
    const int32_t first = static_cast<int32_t>(ids_taken_);
    ids_taken_ = std::min(max_pages_, ids_taken_ + KvPageStore::kSlabPages);
    if (store_ != nullptr) store_->Reserve(ids_taken_);
    for (int32_t id = static_cast<int32_t>(ids_taken_) - 1; id >= first; --id) free_.push_back(id);
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
