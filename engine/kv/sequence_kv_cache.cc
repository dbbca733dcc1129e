#include "engine/kv/sequence_kv_cache.h"

namespace kvserve {

SequenceKvCache::SequenceKvCache(int n_layers, int kv_dim) : kv_dim_(kv_dim), layers_(n_layers) {}

void SequenceKvCache::Append(int layer, const float* keys, const float* values, int n) {
  Layer& l = layers_[layer];
  const size_t count = static_cast<size_t>(n) * kv_dim_;
  l.keys.insert(l.keys.end(), keys, keys + count);
  l.values.insert(l.values.end(), values, values + count);
  l.length += n;
}

void SequenceKvCache::Reserve(int tokens) {
  const size_t count = static_cast<size_t>(tokens) * kv_dim_;
  for (Layer& l : layers_) {
    l.keys.reserve(count);
    l.values.reserve(count);
  }
}

void SequenceKvCache::Clear() {
  for (Layer& l : layers_) {
    l.keys.clear();
    l.values.clear();
    l.length = 0;
  }
}

size_t SequenceKvCache::bytes_used() const {
  size_t total = 0;
  for (const Layer& l : layers_) total += (l.keys.size() + l.values.size()) * sizeof(float);
  return total;
}

}  // namespace kvserve
