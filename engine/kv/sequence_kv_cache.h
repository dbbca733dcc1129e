#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvserve {

// The keys and values one sequence has produced, per layer, stored head-major: each KV head's rows
// are contiguous [length][head_dim] fp32. Head-major lets each KV head keep its own tokens after
// compression (FastKV/SnapKV) and matches the host layout FreeKV recalls from. Each layer keeps
// its own length, shared by its heads.
class SequenceKvCache {
 public:
  SequenceKvCache(int n_layers, int n_kv_heads, int head_dim);

  int n_layers() const { return static_cast<int>(layers_.size()); }
  int n_kv_heads() const { return n_kv_heads_; }
  int head_dim() const { return head_dim_; }
  int length(int layer) const { return layers_[layer].length; }

  // Appends `n` tokens to `layer`. Row i of `keys`/`values` starts at i * row_stride and holds the
  // KV heads one after another, as the projections produce them.
  void Append(int layer, const float* keys, const float* values, int n, int row_stride);
  // KV head `kv_head`'s rows of `layer`: [length][head_dim].
  const float* keys(int layer, int kv_head) const { return Head(layer, kv_head).keys.data(); }
  const float* values(int layer, int kv_head) const { return Head(layer, kv_head).values.data(); }

  // Keeps, for each KV head, the rows `rows[kv_head]` in that order (every head the same count):
  // what a compressing policy leaves of a layer. Indices must be < length(layer).
  void Retain(int layer, const std::vector<std::vector<int32_t>>& rows);

  // Pre-sizes every layer for `tokens` so appends do not reallocate.
  void Reserve(int tokens);
  size_t bytes_used() const;

 private:
  struct HeadRows {
    std::vector<float> keys;
    std::vector<float> values;
  };
  struct Layer {
    std::vector<HeadRows> heads;
    int length = 0;
  };
  const HeadRows& Head(int layer, int kv_head) const { return layers_[layer].heads[kv_head]; }

  int n_kv_heads_;
  int head_dim_;
  std::vector<Layer> layers_;
};

}  // namespace kvserve
