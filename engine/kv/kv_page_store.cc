#include "engine/kv/kv_page_store.h"

#include <algorithm>

namespace kvserve {

KvPageStore::KvPageStore(size_t page_floats, int64_t max_pages)
    : page_floats_(page_floats),
      max_pages_(std::max<int64_t>(0, max_pages)),
      slabs_(std::make_unique<std::unique_ptr<float[]>[]>((max_pages_ + kSlabPages - 1) /
                                                          kSlabPages)) {}

void KvPageStore::Reserve(int64_t pages) {
  pages = std::min(pages, max_pages_);
  while (slabs_used_ * kSlabPages < pages) {
    slabs_[slabs_used_++] = std::make_unique_for_overwrite<float[]>(kSlabPages * page_floats_);
  }
}

}  // namespace kvserve
