#include "engine/kv/sequence_kv_cache.h"

#include <algorithm>
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
    const size_t offset = static_cast<size_t>(in_page) * d;
    fn(KvRowSpan{pool.keys(page, kv_head) + offset, pool.values(page, kv_head) + offset, n}, row);
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
  const int p = page_size();
  for (int i = 0; i < n; ++i) {
    const int slot = l.length + i;
    const int32_t page = l.pages[slot / p];
    const size_t in_page = static_cast<size_t>(slot % p) * d;
    for (int h = 0; h < n_kv_heads(); ++h) {
      const size_t at = static_cast<size_t>(i) * row_stride + static_cast<size_t>(h) * d;
      std::memcpy(pool_.keys(page, h) + in_page, keys + at, d * sizeof(float));
      std::memcpy(pool_.values(page, h) + in_page, values + at, d * sizeof(float));
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
  const size_t d = head_dim();
  ForEachSpan(pool_, layers_[layer].pages, kv_head, begin, end, [&](const KvRowSpan& s, int row) {
    const size_t out = static_cast<size_t>(row - begin) * d;
    std::memcpy(keys + out, s.keys, s.rows * d * sizeof(float));
    std::memcpy(values + out, s.values, s.rows * d * sizeof(float));
  });
}

void SequenceKvCache::HeadSpans(int layer, int kv_head, int begin, int end,
                                std::vector<KvRowSpan>* out) const {
  ForEachSpan(pool_, layers_[layer].pages, kv_head, begin, end,
              [&](const KvRowSpan& s, int) { out->push_back(s); });
}

const float* SequenceKvCache::key_row(int layer, int kv_head, int row) const {
  const Layer& l = layers_[layer];
  return pool_.keys(l.pages[row / page_size()], kv_head) +
         static_cast<size_t>(row % page_size()) * head_dim();
}

const float* SequenceKvCache::value_row(int layer, int kv_head, int row) const {
  const Layer& l = layers_[layer];
  return pool_.values(l.pages[row / page_size()], kv_head) +
         static_cast<size_t>(row % page_size()) * head_dim();
}

void SequenceKvCache::Retain(int layer, const std::vector<std::vector<int32_t>>& rows) {
  Layer& l = layers_[layer];
  if (!pool_.has_storage()) {
    // Ids only: the rows live in the backend's own arena, which compacts them there.
    l.length = rows.empty() ? 0 : static_cast<int>(rows[0].size());
    TrimPages(l);
    return;
  }
  const int d = head_dim();
  const int p = page_size();
  std::vector<float> keys, values;
  for (int h = 0; h < n_kv_heads(); ++h) {
    // Gather first: a kept row may sit in a slot an earlier kept row overwrites.
    const std::vector<int32_t>& keep = rows[h];
    keys.resize(keep.size() * d);
    values.resize(keep.size() * d);
    for (size_t i = 0; i < keep.size(); ++i) {
      std::memcpy(keys.data() + i * d, key_row(layer, h, keep[i]), d * sizeof(float));
      std::memcpy(values.data() + i * d, value_row(layer, h, keep[i]), d * sizeof(float));
    }
    for (size_t i = 0; i < keep.size(); ++i) {
      const int32_t page = l.pages[i / p];
      const size_t in_page = (i % p) * d;
      std::memcpy(pool_.keys(page, h) + in_page, keys.data() + i * d, d * sizeof(float));
      std::memcpy(pool_.values(page, h) + in_page, values.data() + i * d, d * sizeof(float));
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

size_t SequenceKvCache::bytes_used() const { return pages_held() * pool_.shape().bytes(); }

}  // namespace kvserve
