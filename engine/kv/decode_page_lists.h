#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kvserve {

// One sequence's sparse decode pages for a step, per (layer, KV head), in CSR form as FlashInfer's
// paged_kv_t takes them (`indices` + `indptr`): list (layer, kv_head) is
// indices[offsets[i], offsets[i + 1]) with i = layer * n_kv_heads + kv_head, logical pages of the
// sequence's cache in the order attention reads them. Page p holds rows [p * page_size,
// min((p + 1) * page_size, length)). A layer that is not sparse attends densely over its cache.
// Layers are added in order, as the step runs them.
struct DecodePageLists {
  int n_kv_heads = 0;
  std::vector<int32_t> offsets = {0};  // [layers added * n_kv_heads + 1]
  std::vector<int32_t> indices;
  std::vector<char> sparse;  // per layer added

  void Reset(int kv_heads) {
    n_kv_heads = kv_heads;
    offsets.assign(1, 0);
    indices.clear();
    sparse.clear();
  }
  int layers() const { return static_cast<int>(sparse.size()); }
  bool is_sparse(int layer) const { return layer < layers() && sparse[layer] != 0; }
  // The pages of (layer, kv_head); empty for a dense layer.
  std::span<const int32_t> pages(int layer, int kv_head) const {
    const size_t i = static_cast<size_t>(layer) * n_kv_heads + kv_head;
    return std::span(indices).subspan(offsets[i], offsets[i + 1] - offsets[i]);
  }
  // Adds the next layer, dense: every KV head's list empty.
  void AddDenseLayer() {
    sparse.push_back(0);
    offsets.insert(offsets.end(), n_kv_heads, offsets.back());
  }
  // Adds the next layer, sparse; then AddHead once per KV head, in order.
  void BeginSparseLayer() { sparse.push_back(1); }
  void AddHead(std::span<const int32_t> head_pages) {
    indices.insert(indices.end(), head_pages.begin(), head_pages.end());
    offsets.push_back(static_cast<int32_t>(indices.size()));
  }
};

}  // namespace kvserve
