#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/host_device.h"

namespace kvserve::kernels {

// One layer's page: `page_size` tokens of every KV head, head-major [Hkv][2][P][D] (each head's
// keys, then its values), the layout of engine/kv's KvPageShape, in bf16.
struct PagedKvLayout {
  int n_kv_heads = 0;
  int page_size = 0;
  int head_dim = 0;

  KVSERVE_HOST_DEVICE size_t PageElements() const {
    return size_t{2} * n_kv_heads * page_size * head_dim;
  }
  // First element of row `slot` of `kv_head`'s keys (value == 0) or values (value == 1).
  KVSERVE_HOST_DEVICE size_t RowOffset(int32_t page, int kv_head, int value, int slot) const {
    const size_t head_rows = (static_cast<size_t>(page) * n_kv_heads + kv_head) * 2 + value;
    return (head_rows * page_size + slot) * head_dim;
  }
};

// A paged KV cache as the kernels see it: the pages of one layer and each sequence's page table.
struct PagedKvCache {
  Bf16* pages = nullptr;  // page p starts at pages + p * layout.PageElements()
  PagedKvLayout layout;
  // [num_seqs][page_table_stride]: entry j of sequence s holds its cache tokens j*P .. j*P+P-1.
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;

  // Where cache token `index` of sequence `seq` keeps its key row for `kv_head`.
  KVSERVE_HOST_DEVICE size_t KeyOffset(int seq, int index, int kv_head) const {
    const int32_t page =
        page_table[static_cast<size_t>(seq) * page_table_stride + index / layout.page_size];
    return layout.RowOffset(page, kv_head, 0, index % layout.page_size);
  }
  // The value row sits one head-block (P rows) after the key row.
  KVSERVE_HOST_DEVICE size_t ValueOffset(int seq, int index, int kv_head) const {
    return KeyOffset(seq, index, kv_head) + static_cast<size_t>(layout.page_size) * layout.head_dim;
  }
};

}  // namespace kvserve::kernels
