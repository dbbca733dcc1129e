#include "kernels/page_recall.h"

#include <algorithm>

#include "kernels/ceil_div.h"
#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 256;
constexpr int kUnitThreads = 128;

// Copies `count` bf16 (a multiple of 8) with the block's threads, 16 bytes at a time.
__device__ inline void CopyChunk(const __nv_bfloat16* src, __nv_bfloat16* dst, int count) {
  for (int e = threadIdx.x * 8; e < count; e += blockDim.x * 8) {
    device::Store8(dst + e, device::Load8(src + e));
  }
}

// Grid (copies, KV heads): one head's key rows and value rows of one copy.
__global__ void __launch_bounds__(kThreads)
    HostTierWriteKernel(const __nv_bfloat16* src, __nv_bfloat16* dst, PagedKvLayout l,
                        const PageRowCopy* copies) {
  const PageRowCopy c = copies[blockIdx.x];
  const int head = blockIdx.y;
  const int count = c.rows * l.head_dim;
  for (int value = 0; value < 2; ++value) {
    CopyChunk(src + l.RowOffset(c.src_page, head, value, c.first_row),
              dst + l.RowOffset(c.dst_page, head, value, c.first_row), count);
  }
}

// Grid-stride over every list entry (unit, i): entries past a unit's count are skipped (the
// whole block agrees), the others copy one (page, head) chunk from the host tier to the slot.
__global__ void __launch_bounds__(kThreads) RecallKernel(RecallParams p, int total_entries) {
  const PagedKvLayout& l = p.host.layout;
  const __nv_bfloat16* host = AsCuda(p.host.pages);
  __nv_bfloat16* arena = AsCuda(p.device_pages);
  for (int e = blockIdx.x; e < total_entries; e += gridDim.x) {
    const int unit = e / p.list.capacity;
    const int i = e % p.list.capacity;
    if (i >= p.list.counts[unit]) continue;
    const int seq = unit / l.n_kv_heads;
    const int head = unit % l.n_kv_heads;
    const int32_t page = p.list.pages[e];
    const int32_t slot = p.list.slots[e];
    const int rows = max(0, min(l.page_size, p.host_lens[seq] - page * l.page_size));
    const int32_t src =
        p.host.page_table[static_cast<size_t>(seq) * p.host.page_table_stride + page];
    const int32_t dst = p.budget_pages[static_cast<size_t>(seq) * p.slots + slot];
    if (rows == l.page_size) {
      // A full page: keys and values are one contiguous chunk on both sides.
      CopyChunk(host + l.RowOffset(src, head, 0, 0), arena + l.RowOffset(dst, head, 0, 0),
                2 * l.page_size * l.head_dim);
    } else {
      for (int value = 0; value < 2; ++value) {
        CopyChunk(host + l.RowOffset(src, head, value, 0), arena + l.RowOffset(dst, head, value, 0),
                  rows * l.head_dim);
      }
    }
  }
}

// One thread per unit: its resident slots in order, or a dense sequence's pages.
__global__ void __launch_bounds__(kUnitThreads) EmitPageListsKernel(EmitPageListsParams p) {
  const int unit = blockIdx.x * kUnitThreads + threadIdx.x;
  if (unit >= p.num_seqs * p.n_kv_heads) return;
  const int seq = unit / p.n_kv_heads;
  const int slots = p.layout.slots;
  const int budget_stride = p.budget_stride > 0 ? p.budget_stride : slots;
  const size_t state =
      static_cast<size_t>(StateRow(p.state_rows, seq)) * p.n_kv_heads + unit % p.n_kv_heads;
  const int len = p.kv_lens[seq];
  const int n_pages = CeilDiv(len, p.page_size);
  int32_t* pages = p.pages + static_cast<size_t>(unit) * p.capacity;
  int32_t* rows = p.rows + static_cast<size_t>(unit) * p.capacity;
  int count = 0;
  if (n_pages <= slots) {
    for (int32_t j = 0; j < n_pages; ++j, ++count) {
      pages[count] = p.dense_table[static_cast<size_t>(seq) * p.dense_stride + j];
      rows[count] = min(p.page_size, len - j * p.page_size);
    }
  } else {
    for (int32_t slot = 0; slot < slots; ++slot) {
      const int32_t page = p.slot_page[state * slots + slot];
      if (page < 0) continue;
      pages[count] = p.budget_pages[static_cast<size_t>(seq) * budget_stride + slot];
      rows[count] = min(p.page_size, len - page * p.page_size);
      ++count;
    }
  }
  p.counts[unit] = count;
}

bool ValidLayout(const PagedKvLayout& l) {
  return l.n_kv_heads > 0 && l.n_kv_heads <= 65535 && l.page_size > 0 && l.head_dim > 0 &&
         l.head_dim % 8 == 0;
}

}  // namespace

cudaError_t LaunchHostTierWrite(const HostTierWriteParams& p, cudaStream_t stream) {
  if (!ValidLayout(p.layout) || p.num_copies < 0 || !device::Aligned16(p.src_pages) ||
      !device::Aligned16(p.dst_pages)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_copies == 0) return cudaSuccess;
  return device::LaunchKernel(HostTierWriteKernel, dim3(p.num_copies, p.layout.n_kv_heads),
                              kThreads, 0, stream, AsCuda(p.src_pages), AsCuda(p.dst_pages),
                              p.layout, p.copies);
}

cudaError_t LaunchRecallPages(const RecallParams& p, cudaStream_t stream) {
  const PagedKvLayout& l = p.host.layout;
  if (!ValidLayout(l) || p.num_seqs < 0 || p.slots <= 0 || p.list.capacity < 0 ||
      p.max_blocks < 0 || !device::Aligned16(p.host.pages) || !device::Aligned16(p.device_pages)) {
    return cudaErrorInvalidValue;
  }
  const int64_t total = int64_t{p.num_seqs} * l.n_kv_heads * p.list.capacity;
  if (total == 0) return cudaSuccess;
  if (total > 0x7fffffff) return cudaErrorInvalidValue;
  const int blocks = p.max_blocks > 0 ? std::min<int64_t>(total, p.max_blocks) : total;
  return device::LaunchKernel(RecallKernel, blocks, kThreads, 0, stream, p,
                              static_cast<int>(total));
}

cudaError_t LaunchEmitPageLists(const EmitPageListsParams& p, cudaStream_t stream) {
  if (p.num_seqs < 0 || p.n_kv_heads <= 0 || p.page_size <= 0 || p.layout.slots <= 0 ||
      p.capacity < p.layout.slots || (p.budget_stride != 0 && p.budget_stride < p.layout.slots)) {
    return cudaErrorInvalidValue;
  }
  const int units = p.num_seqs * p.n_kv_heads;
  if (units == 0) return cudaSuccess;
  return device::LaunchKernel(EmitPageListsKernel, CeilDiv(units, kUnitThreads), kUnitThreads, 0,
                              stream, p);
}

}  // namespace kvserve::kernels
