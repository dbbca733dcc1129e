#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv/kv_page_store.h"

namespace kvserve {

// A fixed budget of KV page ids shared by every sequence, and their count. The pages' memory is
// a KvPageStore: the backend's (Backend::CreateKvPageStore: host fp32 slabs on the CPU; none for
// a device arena, then the pool hands out ids only) or, made without one, the pool's own. Ids are
// taken in blocks of 64 as first used; freed ids are reused. Only the engine thread allocates
// and frees; the counters may be read from any thread, and a page handed out may be read or
// written from another thread (a recall worker): its memory never moves.
class PagePool {
 public:
  // Far beyond any memory: the slab table for it is 2 MiB of pointers.
  static constexpr int64_t kUnbounded = int64_t{1} << 24;

  // With its own store of `dtype` elements (tests, tools, a policy's private budget).
  PagePool(KvPageShape shape, int64_t max_pages, KvDtype dtype = KvDtype::kF32);
  // Over `store` (at least `max_pages` pages of shape.floats(), outliving the pool), or ids only
  // when it is null: then the pages' memory is the backend's business and data() must not be used.
  PagePool(KvPageShape shape, int64_t max_pages, KvPageStore* store);
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // Pages that fit in `bytes` when stored in elements of `element_bytes`.
  static int64_t PagesForBytes(const KvPageShape& shape, int64_t bytes,
                               size_t element_bytes = sizeof(float));

  const KvPageShape& shape() const { return shape_; }
  int page_size() const { return shape_.page_size; }
  int64_t total_pages() const { return max_pages_; }
  int64_t used_pages() const { return used_.load(std::memory_order_relaxed); }
  int64_t free_pages() const { return max_pages_ - used_pages(); }
  // Whether pages have host memory here (data(), keys(), values()).
  bool has_storage() const { return store_ != nullptr; }
  // How the pages' elements are stored (fp32 for an ids-only pool: nothing is stored here).
  KvDtype dtype() const { return store_ != nullptr ? store_->dtype() : KvDtype::kF32; }
  size_t element_bytes() const { return KvDtypeBytes(dtype()); }

  // Appends `n` page ids to `pages`, all or none: false (and nothing taken) when fewer are free.
  bool Allocate(int64_t n, std::vector<int32_t>* pages);
  void Free(std::span<const int32_t> pages);

  // The page's raw memory, shape().floats() elements of dtype(); its layout is the owner's
  // business.
  std::byte* data(int32_t page) { return store_->page(page); }
  const std::byte* data(int32_t page) const { return store_->page(page); }

  // In the host (HND) layout, KV head `kv_head`'s rows in `page`: [page_size][head_dim].
  std::byte* keys(int32_t page, int kv_head) { return data(page) + HeadOffset(kv_head); }
  std::byte* values(int32_t page, int kv_head) { return keys(page, kv_head) + HeadBytes(); }
  const std::byte* keys(int32_t page, int kv_head) const {
    return data(page) + HeadOffset(kv_head);
  }
  const std::byte* values(int32_t page, int kv_head) const {
    return keys(page, kv_head) + HeadBytes();
  }

 private:
  size_t HeadBytes() const {
    return static_cast<size_t>(shape_.page_size) * shape_.head_dim * element_bytes();
  }
  size_t HeadOffset(int kv_head) const { return 2 * HeadBytes() * kv_head; }

  KvPageShape shape_;
  int64_t max_pages_;
  std::unique_ptr<KvPageStore> own_store_;  // when made without a store
  KvPageStore* store_;
  int64_t ids_taken_ = 0;      // ids [0, ids_taken_) have been handed out at least once
  std::vector<int32_t> free_;  // taken ids not in use
  std::atomic<int64_t> used_ = 0;
};

}  // namespace kvserve
