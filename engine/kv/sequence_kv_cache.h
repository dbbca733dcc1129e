#pragma once

#include <cstddef>
#include <vector>

namespace kvserve {

// The keys and values one sequence has produced, per layer, token-major [length][kv_dim] fp32.
// Each layer keeps its own length, so policies that compress some layers can shorten them alone.
class SequenceKvCache {
 public:
  SequenceKvCache(int n_layers, int kv_dim);

  int n_layers() const { return static_cast<int>(layers_.size()); }
  int kv_dim() const { return kv_dim_; }
  int length(int layer) const { return layers_[layer].length; }

  // Appends `n` tokens' keys and values, each [n][kv_dim], to `layer`.
  void Append(int layer, const float* keys, const float* values, int n);
  const float* keys(int layer) const { return layers_[layer].keys.data(); }
  const float* values(int layer) const { return layers_[layer].values.data(); }

  // Pre-sizes every layer for `tokens` so appends do not reallocate.
  void Reserve(int tokens);
  // Drops every layer's contents (keeps the allocation).
  void Clear();
  size_t bytes_used() const;

 private:
  struct Layer {
    std::vector<float> keys;
    std::vector<float> values;
    int length = 0;
  };
  int kv_dim_;
  std::vector<Layer> layers_;
};

}  // namespace kvserve
