#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/kv/page_pool.h"

namespace kvserve {

// `rows` consecutive rows of one KV head's keys and values, [rows][head_dim] elements of `dtype`
// each, in place.
struct KvRowSpan {
  const std::byte* keys;
  const std::byte* values;
  int rows;
  KvDtype dtype = KvDtype::kF32;
};

// The keys and values one sequence holds, per layer, in pages of a shared PagePool: each layer has
// its own page table and length (compressing policies shorten layers differently); within a page
// each KV head's rows are contiguous, so a head may keep its own tokens (FastKV/SnapKV) and a page
// head is one copy for FreeKV's host tier. Pages go back to the pool on Release or destruction.
class SequenceKvCache {
 public:
  SequenceKvCache(PagePool& pool, int n_layers);
  ~SequenceKvCache() { Release(); }
  SequenceKvCache(const SequenceKvCache&) = delete;
  SequenceKvCache& operator=(const SequenceKvCache&) = delete;

  int n_layers() const { return static_cast<int>(layers_.size()); }
  int n_kv_heads() const { return pool_.shape().n_kv_heads; }
  int head_dim() const { return pool_.shape().head_dim; }
  int page_size() const { return pool_.page_size(); }
  KvDtype dtype() const { return pool_.dtype(); }
  // Bytes of one head's key (or value) row as stored.
  size_t row_bytes() const { return static_cast<size_t>(head_dim()) * pool_.element_bytes(); }
  int length(int layer) const { return layers_[layer].length; }
  const std::vector<int32_t>& page_table(int layer) const { return layers_[layer].pages; }
  int64_t pages_held() const;
  // Whether `layer`'s pages can take `n` more rows.
  bool HasRoom(int layer, int n) const;

  // Pages that must be added so every layer can take `tokens` more.
  int64_t PagesToGrow(int tokens) const;
  // Takes those pages, all or none: false when the pool is short. In the engine only the
  // KvCacheManager calls it (and GrowLayer): backends write rows into pages they are given.
  bool Grow(int tokens);
  // The same for one layer (a copy of a cache whose layers differ in length).
  bool GrowLayer(int layer, int tokens);

  // Appends `n` tokens to `layer`, into pages Grow took. Row i of `keys`/`values` starts at
  // i * row_stride and holds the KV heads one after another, as the projections produce them.
  // False (nothing appended) when the layer's pages cannot hold them.
  bool Append(int layer, const float* keys, const float* values, int n, int row_stride);
  // Append without the rows: advances `layer`'s length by `n` within its pages, leaving the host
  // pages unwritten. For a backend that keeps the rows in its own device copy of the pool's pages
  // (same page ids) and needs only the page tables and lengths here.
  bool AppendUnwritten(int layer, int n);

  // Copies KV head `kv_head`'s rows [begin, end) of `layer` to contiguous [end - begin][head_dim]
  // fp32 (the keys only when `values` is null).
  void GatherHead(int layer, int kv_head, int begin, int end, float* keys, float* values) const;
  // The same rows in place, one span per page they touch, appended to `out` (decode attention
  // reads them there instead of copying them out).
  void HeadSpans(int layer, int kv_head, int begin, int end, std::vector<KvRowSpan>* out) const;
  // One row as stored (row_bytes() of dtype()).
  const std::byte* key_bytes(int layer, int kv_head, int row) const;
  const std::byte* value_bytes(int layer, int kv_head, int row) const;
  // One row of an fp32 cache (tests and tools that read rows back).
  const float* key_row(int layer, int kv_head, int row) const;
  const float* value_row(int layer, int kv_head, int row) const;

  // Keeps, for each KV head, the rows `rows[kv_head]` in that order (every head the same count):
  // what a compressing policy leaves of a layer. Indices must be < length(layer). Frees the pages
  // no longer needed. On an ids-only pool (a backend's own arena) only the length and the page
  // table change: the backend compacts its copy of the rows itself.
  void Retain(int layer, const std::vector<std::vector<int32_t>>& rows);

  // Keeps `layer`'s first `rows` rows (a backend that compacted the kept rows to the front of its
  // own copy of the pages) and frees the pages no longer needed; the host rows are not touched.
  void Truncate(int layer, int rows);

  // Gives every page back and empties every layer (finish, cancel, preemption).
  void Release();
  size_t bytes_used() const;

 private:
  struct Layer {
    std::vector<int32_t> pages;
    int length = 0;
  };
  int64_t PagesFor(int tokens) const { return (tokens + page_size() - 1) / page_size(); }
  void TrimPages(Layer& l);
  // Row `row` of a head's keys (or values) in the pool: writable, as the pool's pages are.
  std::byte* RowAt(int layer, int kv_head, int row, bool value) const;

  PagePool& pool_;
  std::vector<Layer> layers_;
};

}  // namespace kvserve
