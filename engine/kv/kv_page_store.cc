#include "engine/kv/kv_page_store.h"

#include <algorithm>

namespace kvserve {

KvPageStore::KvPageStore(KvDtype dtype, size_t page_elements, int64_t max_pages)
    : dtype_(dtype),
      page_bytes_(page_elements * KvDtypeBytes(dtype)),
      max_pages_(std::max<int64_t>(0, max_pages)),
      slabs_(std::make_unique<std::unique_ptr<std::byte[]>[]>((max_pages_ + kSlabPages - 1) /
                                                              kSlabPages)) {}

void KvPageStore::Reserve(int64_t pages) {
  pages = std::min(pages, max_pages_);
  while (slabs_used_ * kSlabPages < pages) {
    slabs_[slabs_used_++] = std::make_unique_for_overwrite<std::byte[]>(kSlabPages * page_bytes_);
  }
}

}  // namespace kvserve
