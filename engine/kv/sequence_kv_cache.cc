#include "engine/kv/sequence_kv_cache.h"

namespace kvserve {

SequenceKvCache::SequenceKvCache(int n_layers, int n_kv_heads, int head_dim)
    : n_kv_heads_(n_kv_heads), head_dim_(head_dim), layers_(n_layers) {
  for (Layer& l : layers_) l.heads.resize(n_kv_heads);
}

void SequenceKvCache::Append(int layer, const float* keys, const float* values, int n,
                             int row_stride) {
  Layer& l = layers_[layer];
  for (int h = 0; h < n_kv_heads_; ++h) {
    HeadRows& head = l.heads[h];
    for (int i = 0; i < n; ++i) {
      const size_t at = static_cast<size_t>(i) * row_stride + static_cast<size_t>(h) * head_dim_;
      head.keys.insert(head.keys.end(), keys + at, keys + at + head_dim_);
      head.values.insert(head.values.end(), values + at, values + at + head_dim_);
    }
  }
  l.length += n;
}

void SequenceKvCache::Retain(int layer, const std::vector<std::vector<int32_t>>& rows) {
  Layer& l = layers_[layer];
  for (int h = 0; h < n_kv_heads_; ++h) {
    HeadRows& head = l.heads[h];
    std::vector<float> keys, values;
    keys.reserve(rows[h].size() * head_dim_);
    values.reserve(rows[h].size() * head_dim_);
    for (const int32_t r : rows[h]) {
      const size_t at = static_cast<size_t>(r) * head_dim_;
      keys.insert(keys.end(), head.keys.begin() + at, head.keys.begin() + at + head_dim_);
      values.insert(values.end(), head.values.begin() + at, head.values.begin() + at + head_dim_);
    }
    head.keys = std::move(keys);
    head.values = std::move(values);
  }
  l.length = rows.empty() ? 0 : static_cast<int>(rows[0].size());
}

void SequenceKvCache::Reserve(int tokens) {
  const size_t count = static_cast<size_t>(tokens) * head_dim_;
  for (Layer& l : layers_) {
    for (HeadRows& head : l.heads) {
      head.keys.reserve(count);
      head.values.reserve(count);
    }
  }
}

size_t SequenceKvCache::bytes_used() const {
  size_t total = 0;
  for (const Layer& l : layers_) {
    for (const HeadRows& head : l.heads)
      total += (head.keys.size() + head.values.size()) * sizeof(float);
  }
  return total;
}

}  // namespace kvserve
