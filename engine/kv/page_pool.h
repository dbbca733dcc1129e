#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace kvserve {

// One page holds `page_size` tokens of one layer for every KV head, head-major: [Hkv][2][P][D]
// (each head's keys, then its values). FreeKV's host layout: one head's page is one copy.
struct KvPageShape {
  int n_kv_heads = 0;
  int page_size = 32;
  int head_dim = 0;
  size_t floats() const { return size_t{2} * n_kv_heads * page_size * head_dim; }
  // Bytes of one page stored in elements of `element_bytes` (fp32 on the CPU, bf16 on CUDA).
  size_t bytes(size_t element_bytes = sizeof(float)) const { return floats() * element_bytes; }
};

// A fixed budget of KV pages shared by every sequence. Memory is taken in slabs as pages are first
// used, so a large budget costs nothing until it fills; freed pages are reused, never returned.
// Only the engine thread allocates and frees; the counters may be read from any thread, and a
// page handed out may be read or written from another thread (a recall worker): the slab table
// never moves.
class PagePool {
 public:
  // Far beyond any memory: the slab table for it is 2 MiB of pointers.
  static constexpr int64_t kUnbounded = int64_t{1} << 24;

  PagePool(KvPageShape shape, int64_t max_pages);
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

  // Appends `n` page ids to `pages`, all or none: false (and nothing taken) when fewer are free.
  bool Allocate(int64_t n, std::vector<int32_t>* pages);
  void Free(std::span<const int32_t> pages);

  // The page's raw memory, shape().floats() floats; its layout is the owner's business.
  float* data(int32_t page) { return Page(page); }
  const float* data(int32_t page) const { return const_cast<PagePool*>(this)->Page(page); }

  // In the host (HND) layout, KV head `kv_head`'s rows in `page`: [page_size][head_dim].
  float* keys(int32_t page, int kv_head) { return Page(page) + HeadOffset(kv_head); }
  float* values(int32_t page, int kv_head) { return keys(page, kv_head) + HeadFloats(); }
  const float* keys(int32_t page, int kv_head) const {
    return const_cast<PagePool*>(this)->keys(page, kv_head);
  }
  const float* values(int32_t page, int kv_head) const {
    return const_cast<PagePool*>(this)->values(page, kv_head);
  }

 private:
  static constexpr int kSlabPages = 64;
  size_t HeadFloats() const { return static_cast<size_t>(shape_.page_size) * shape_.head_dim; }
  size_t HeadOffset(int kv_head) const { return 2 * HeadFloats() * kv_head; }
  float* Page(int32_t page) {
    return slabs_[page / kSlabPages].get() + (page % kSlabPages) * shape_.floats();
  }
  int64_t slab_count() const { return (max_pages_ + kSlabPages - 1) / kSlabPages; }

  KvPageShape shape_;
  int64_t max_pages_;
  std::unique_ptr<std::unique_ptr<float[]>[]> slabs_;  // [slab_count()], filled as pages are used
  int64_t slabs_used_ = 0;
  std::vector<int32_t> free_;  // ids of allocated slabs' pages not in use
  std::atomic<int64_t> used_ = 0;
};

}  // namespace kvserve
