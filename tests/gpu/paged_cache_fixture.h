#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"
#include "kernels/ragged_batch.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels::testing {

// One sequence of a test batch: `cached` tokens already in its cache, `fresh` new ones.
struct SequenceChunk {
  int cached = 0;
  int fresh = 0;
};

// A ragged batch in host memory: rows in sequence order, each new token at the end of its cache.
struct HostRaggedBatch {
  std::vector<int32_t> cu_seqlens;
  std::vector<int32_t> cache_positions;
  std::vector<int32_t> kv_lens;  // cached + fresh
  int max_seqlen = 0;

  int num_seqs() const { return static_cast<int>(kv_lens.size()); }
  int total_tokens() const { return cu_seqlens.back(); }
  // The batch over `cu_seqlens` and `cache_positions` wherever they live (host or device).
  RaggedBatch View(const int32_t* cu, const int32_t* positions) const {
    return RaggedBatch{.cu_seqlens = cu,
                       .cache_positions = positions,
                       .num_seqs = num_seqs(),
                       .total_tokens = total_tokens(),
                       .max_seqlen = max_seqlen};
  }
};

inline HostRaggedBatch MakeRaggedBatch(const std::vector<SequenceChunk>& chunks) {
  HostRaggedBatch batch;
  batch.cu_seqlens.push_back(0);
  for (const SequenceChunk& c : chunks) {
    for (int i = 0; i < c.fresh; ++i) batch.cache_positions.push_back(c.cached + i);
    batch.cu_seqlens.push_back(batch.cu_seqlens.back() + c.fresh);
    batch.kv_lens.push_back(c.cached + c.fresh);
    batch.max_seqlen = std::max(batch.max_seqlen, c.fresh);
  }
  return batch;
}

// A paged cache in host memory with random contents. Pages are handed out in shuffled order (and
// one spare page is never used), so a sequence's pages are neither contiguous nor in order.
struct HostPagedCache {
  PagedKvLayout layout;
  int page_table_stride = 0;
  std::vector<int32_t> page_table;
  std::vector<Bf16> pages;

  PagedKvCache View(Bf16* page_data, const int32_t* table) const {
    return PagedKvCache{.pages = page_data,
                        .layout = layout,
                        .page_table = table,
                        .page_table_stride = page_table_stride};
  }
};

inline HostPagedCache MakeRandomPagedCache(const PagedKvLayout& layout,
                                           const std::vector<int32_t>& capacities,
                                           std::mt19937& rng) {
  HostPagedCache cache;
  cache.layout = layout;
  int total_pages = 1;
  for (int32_t tokens : capacities) {
    const int pages = (tokens + layout.page_size - 1) / layout.page_size;
    cache.page_table_stride = std::max(cache.page_table_stride, pages);
    total_pages += pages;
  }
  cache.page_table_stride = std::max(cache.page_table_stride, 1);
  std::vector<int32_t> order(total_pages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  cache.page_table.assign(capacities.size() * cache.page_table_stride, -1);
  size_t next = 0;
  for (size_t s = 0; s < capacities.size(); ++s) {
    const int pages = (capacities[s] + layout.page_size - 1) / layout.page_size;
    for (int j = 0; j < pages; ++j)
      cache.page_table[s * cache.page_table_stride + j] = order[next++];
  }
  cache.pages = RandomBf16(total_pages * layout.PageElements(), rng);
  return cache;
}

// The cache's pages and page table copied to the device, with the view over them.
struct DevicePagedCache {
  explicit DevicePagedCache(const HostPagedCache& host)
      : pages(host.pages),
        page_table(host.page_table),
        view(host.View(pages.data(), page_table.data())) {}
  DeviceBuffer<Bf16> pages;
  DeviceBuffer<int32_t> page_table;
  PagedKvCache view;
};

}  // namespace kvserve::kernels::testing
