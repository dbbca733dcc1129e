#include "engine/kv/sequence_kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace kvserve {
namespace {

// Calls fn(span, first row) for KV head `kv_head`'s rows [begin, end) of a layer with page table
// `pages`, one span per page they touch.
template <typename Fn>
void ForEachSpan(const PagePool& pool, const std::vector<int32_t>& pages, int kv_head, int begin,
                 int end, Fn fn) {
  const int d = pool.shape().head_dim;
  const int p = pool.page_size();
  for (int row = begin; row < end;) {
    const int32_t page = pages[row / p];
    const int in_page = row % p;
    const int n = std::min(end - row, p - in_page);
    const size_t offset = static_cast<size_t>(in_page) * d * pool.element_bytes();
    fn(KvRowSpan{pool.keys(page, kv_head) + offset, pool.values(page, kv_head) + offset, n,
                 pool.dtype()},
       row);
    row += n;
  }
}

}  // namespace

SequenceKvCache::SequenceKvCache(PagePool& pool, int n_layers) : pool_(pool), layers_(n_layers) {}

int64_t SequenceKvCache::pages_held() const {
  int64_t n = 0;
  for (const Layer& l : layers_) n += static_cast<int64_t>(l.pages.size());
  return n;
}

int64_t SequenceKvCache::PagesToGrow(int tokens) const {
  int64_t n = 0;
  for (const Layer& l : layers_) {
    n += std::max<int64_t>(0, PagesFor(l.length + tokens) - static_cast<int64_t>(l.pages.size()));
  }
  return n;
}

bool SequenceKvCache::Grow(int tokens) {
  std::vector<int32_t> fresh;
  if (!pool_.Allocate(PagesToGrow(tokens), &fresh)) return false;
  size_t next = 0;
  for (Layer& l : layers_) {
    while (static_cast<int64_t>(l.pages.size()) < PagesFor(l.length + tokens)) {
      l.pages.push_back(fresh[next++]);
    }
  }
  return true;
}

bool SequenceKvCache::GrowLayer(int layer, int tokens) {
  Layer& l = layers_[layer];
  const int64_t missing = PagesFor(l.length + tokens) - static_cast<int64_t>(l.pages.size());
  return missing <= 0 || pool_.Allocate(missing, &l.pages);
}

bool SequenceKvCache::HasRoom(int layer, int n) const {
  const Layer& l = layers_[layer];
  return PagesFor(l.length + n) <= static_cast<int64_t>(l.pages.size());
}

bool SequenceKvCache::Append(int layer, const float* keys, const float* values, int n,
                             int row_stride) {
  if (!HasRoom(layer, n)) return false;
  Layer& l = layers_[layer];
  const int d = head_dim();
  const KvDtype t = pool_.dtype();
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < n_kv_heads(); ++h) {
      const size_t at = static_cast<size_t>(i) * row_stride + static_cast<size_t>(h) * d;
      StoreKvRow(keys + at, d, t, RowAt(layer, h, l.length + i, false));
      StoreKvRow(values + at, d, t, RowAt(layer, h, l.length + i, true));
    }
  }
  l.length += n;
  return true;
}

bool SequenceKvCache::AppendUnwritten(int layer, int n) {
  if (!HasRoom(layer, n)) return false;
  layers_[layer].length += n;
  return true;
}

void SequenceKvCache::GatherHead(int layer, int kv_head, int begin, int end, float* keys,
                                 float* values) const {
  const int d = head_dim();
  ForEachSpan(pool_, layers_[layer].pages, kv_head, begin, end, [&](const KvRowSpan& s, int row) {
    const size_t out = static_cast<size_t>(row - begin) * d;
    LoadKvRow(s.keys, s.rows * d, s.dtype, keys + out);
    if (values != nullptr) LoadKvRow(s.values, s.rows * d, s.dtype, values + out);
  });
}

void SequenceKvCache::HeadSpans(int layer, int kv_head, int begin, int end,
                                std::vector<KvRowSpan>* out) const {
  ForEachSpan(pool_, layers_[layer].pages, kv_head, begin, end,
              [&](const KvRowSpan& s, int) { out->push_back(s); });
}

std::byte* SequenceKvCache::RowAt(int layer, int kv_head, int row, bool value) const {
  const int32_t page = layers_[layer].pages[row / page_size()];
  return (value ? pool_.values(page, kv_head) : pool_.keys(page, kv_head)) +
         static_cast<size_t>(row % page_size()) * row_bytes();
}

const std::byte* SequenceKvCache::key_bytes(int layer, int kv_head, int row) const {
  return RowAt(layer, kv_head, row, false);
}

const std::byte* SequenceKvCache::value_bytes(int layer, int kv_head, int row) const {
  return RowAt(layer, kv_head, row, true);
}

const float* SequenceKvCache::key_row(int layer, int kv_head, int row) const {
  assert(pool_.dtype() == KvDtype::kF32);
  return reinterpret_cast<const float*>(key_bytes(layer, kv_head, row));
}

const float* SequenceKvCache::value_row(int layer, int kv_head, int row) const {
  assert(pool_.dtype() == KvDtype::kF32);
  return reinterpret_cast<const float*>(value_bytes(layer, kv_head, row));
}

void SequenceKvCache::Retain(int layer, const std::vector<std::vector<int32_t>>& rows) {
  Layer& l = layers_[layer];
  if (!pool_.has_storage()) {
    // Ids only: the rows live in the backend's own arena, which compacts them there.
    l.length = rows.empty() ? 0 : static_cast<int>(rows[0].size());
    TrimPages(l);
    return;
  }
  const size_t b = row_bytes();
  std::vector<std::byte> keys, values;
  for (int h = 0; h < n_kv_heads(); ++h) {
    // Gather first: a kept row may sit in a slot an earlier kept row overwrites.
    const std::vector<int32_t>& keep = rows[h];
    keys.resize(keep.size() * b);
    values.resize(keep.size() * b);
    for (size_t i = 0; i < keep.size(); ++i) {
      std::memcpy(keys.data() + i * b, key_bytes(layer, h, keep[i]), b);
      std::memcpy(values.data() + i * b, value_bytes(layer, h, keep[i]), b);
    }
    for (size_t i = 0; i < keep.size(); ++i) {
      const int row = static_cast<int>(i);
      std::memcpy(RowAt(layer, h, row, false), keys.data() + i * b, b);
      std::memcpy(RowAt(layer, h, row, true), values.data() + i * b, b);
    }
  }
  l.length = rows.empty() ? 0 : static_cast<int>(rows[0].size());
  TrimPages(l);
}

void SequenceKvCache::TrimPages(Layer& l) {
  const size_t keep = static_cast<size_t>(PagesFor(l.length));
  if (l.pages.size() <= keep) return;
  pool_.Free(std::span(l.pages).subspan(keep));
  l.pages.resize(keep);
}

void SequenceKvCache::Truncate(int layer, int rows) {
  Layer& l = layers_[layer];
  l.length = std::clamp(rows, 0, l.length);
  TrimPages(l);
}

void SequenceKvCache::Release() {
  for (Layer& l : layers_) {
    l.length = 0;
    TrimPages(l);
  }
}

size_t SequenceKvCache::bytes_used() const {
  return pages_held() * pool_.shape().bytes(pool_.element_bytes());
}

}  // namespace kvserve
