#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::kernels {

// The host tier's memory (research/freekv.md §5, §11 A): pages of PagedKvLayout ([page][kv_head]
// [K|V][page_size][head_dim] bf16: one (page, KV head) is one contiguous 2·P·D chunk, 16 KiB at
// P = 32, D = 128) in pinned host memory mapped into the device's address space, so that kernels
// gather from it directly (zero copy) and write the new rows into it.
struct HostTierMemory {
  Bf16* host = nullptr;    // what the host reads and writes
  Bf16* device = nullptr;  // the same memory as kernels address it
  PagedKvLayout layout;
  int64_t n_pages = 0;
  size_t bytes = 0;
};

// Bytes `n_pages` pages of `layout` take: what --kv-host-memory accounts.
size_t HostTierBytes(const PagedKvLayout& layout, int64_t n_pages);

// cudaHostAlloc(cudaHostAllocMapped) of `n_pages` pages and their device pointer. On failure
// nothing stays allocated and `out` is left empty.
cudaError_t AllocateHostTier(const PagedKvLayout& layout, int64_t n_pages, HostTierMemory* out);

// Frees what AllocateHostTier gave (after the device has finished with it) and empties `memory`.
cudaError_t FreeHostTier(HostTierMemory* memory);

}  // namespace kvserve::kernels
