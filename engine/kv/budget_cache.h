#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/residency_map.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve {

// One sequence's accelerator-side KV budget (FreeKV/Quest): per layer `layout.slots` pages from
// the device pool, token-major (NHD) [2][P][Hkv][D] as attention and appends want them, while
// the full KV stays head-major (HND) in the host cache. A recall converts one (page, head) chunk.
class BudgetCache {
 public:
  BudgetCache(PagePool& device_pool, int n_layers, BudgetLayout layout);
  ~BudgetCache() { Release(); }
  BudgetCache(const BudgetCache&) = delete;
  BudgetCache& operator=(const BudgetCache&) = delete;

  // kShort: the device pool had no room when the slots were asked for; the sequence runs dense
  // for good rather than failing.
  enum class State { kUnallocated, kAllocated, kShort };

  const BudgetLayout& layout() const { return layout_; }
  int page_size() const { return shape_.page_size; }
  State state() const { return state_; }
  bool allocated() const { return state_ == State::kAllocated; }
  // Layer `layer`'s device page ids, one per slot (after Allocate): a device backend's arena pages.
  std::span<const int32_t> layer_pages(int layer) const {
    return std::span(pages_).subspan(static_cast<size_t>(layer) * layout_.slots, layout_.slots);
  }
  // Takes every layer's slots, all or none, once: false when the device pool is short, and the
  // budget then stays kShort.
  bool Allocate();
  // Gives the slots back (kUnallocated again).
  void Release();

  // Copies rows [first_row, first_row + rows) of host page `page`, KV head `kv_head`, into the
  // same rows of `slot` of `layer`: HND → NHD.
  void Recall(const SequenceKvCache& host, int layer, int32_t page, int kv_head, int32_t slot,
              int first_row, int rows);
  // Row `row` of head `kv_head` in `slot` of an fp32 pool (tests); a head's rows are
  // n_kv_heads * head_dim apart.
  const float* key_row(int layer, int32_t slot, int row, int kv_head) const;
  const float* value_row(int layer, int32_t slot, int row, int kv_head) const;
  int row_stride() const { return shape_.n_kv_heads * shape_.head_dim; }
  size_t bytes_per_chunk() const;  // one recalled (page, head): keys and values

 private:
  std::byte* Slot(int layer, int32_t slot) const;

  PagePool& pool_;
  KvPageShape shape_;
  int n_layers_;
  BudgetLayout layout_;
  State state_ = State::kUnallocated;
  std::vector<int32_t> pages_;  // [layer][slot] device page ids
};

// What the cache's owner does between steps for a tiered policy (the KvCacheManager before a
// decode step; tests and tools that drive a backend themselves likewise): once `cache` is about
// to take `tokens` more and then holds more pages in some layer than `policy`'s device budget has
// slots (at once with `from_first_step`: a backend that keeps every page in the slots), the budget
// is allocated, once. The policy only reads whether it got it.
void ProvideDeviceBudget(KvPolicy& policy, const SequenceKvCache& cache, int tokens,
                         bool from_first_step = false);

// The NHD ↔ HND conversions a tiered cache needs, on whole pages: [2][P][Hkv][D] ↔ [Hkv][2][P][D].
void NhdToHnd(const float* nhd, const KvPageShape& shape, float* hnd);
void HndToNhd(const float* hnd, const KvPageShape& shape, float* nhd);

}  // namespace kvserve
