#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/kv/kv_dtype.h"
#include "engine/kv/kv_policy_options.h"

namespace kvserve {

// One page holds `page_size` tokens of one layer for every KV head, head-major: [Hkv][2][P][D]
// (each head's keys, then its values). FreeKV's host layout: one head's page is one copy.
struct KvPageShape {
  int n_kv_heads = 0;
  int page_size = kDefaultKvPageSize;
  int head_dim = 0;
  size_t floats() const { return size_t{2} * n_kv_heads * page_size * head_dim; }  // elements
  // Bytes of one page stored in elements of `element_bytes` (fp16 or fp32 on the CPU, bf16 on
  // CUDA).
  size_t bytes(size_t element_bytes = sizeof(float)) const { return floats() * element_bytes; }
};

// Host memory for KV pages, addressed by page id: `page_elements` of `dtype` per page, taken in
// slabs of 64 pages as ids are first used, so a large budget costs nothing until it fills. The
// memory never moves, so a page may be read or written from another thread (a recall worker) while
// the engine thread takes more. A backend hands one out per KV tier it keeps in host memory
// (Backend::CreateKvPageStore); a PagePool made without one owns its own.
class KvPageStore {
 public:
  static constexpr int kSlabPages = 64;

  KvPageStore(KvDtype dtype, size_t page_elements, int64_t max_pages);
  KvPageStore(const KvPageStore&) = delete;
  KvPageStore& operator=(const KvPageStore&) = delete;

  KvDtype dtype() const { return dtype_; }
  size_t page_bytes() const { return page_bytes_; }
  int64_t max_pages() const { return max_pages_; }
  // Makes the memory of pages [0, pages) addressable (engine thread).
  void Reserve(int64_t pages);
  std::byte* page(int32_t id) const {
    return slabs_[id / kSlabPages].get() + static_cast<size_t>(id % kSlabPages) * page_bytes_;
  }

 private:
  KvDtype dtype_;
  size_t page_bytes_;
  int64_t max_pages_;
  std::unique_ptr<std::unique_ptr<std::byte[]>[]> slabs_;  // filled as pages are reserved
  int64_t slabs_used_ = 0;
};

// The two tiers of KV pages: the device pool (full/snapkv/fastkv caches, tiered budgets) and the
// host tier (tiered policies' full caches).
enum class KvTier { kDevice, kHost };

// Who owns KV page memory: a Backend (ggml's backend buffers). The KvCacheManager asks it for each
// tier's store and gives it back at its end.
class KvPageStoreProvider {
 public:
  virtual ~KvPageStoreProvider() = default;
  // Memory for `tier`'s pages of `shape`, ids below `max_pages`, alive until released; null when
  // the provider keeps that tier where the host cannot address it (a device arena): its pool then
  // hands out page ids only.
  virtual KvPageStore* AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                          int64_t max_pages) = 0;
  virtual void ReleaseKvPageStore(KvPageStore* store) = 0;
};

}  // namespace kvserve
