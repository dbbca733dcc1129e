#include "kernels/host_tier.h"

namespace kvserve::kernels {

size_t HostTierBytes(const PagedKvLayout& layout, int64_t n_pages) {
  return static_cast<size_t>(n_pages) * layout.PageElements() * sizeof(Bf16);
}

cudaError_t AllocateHostTier(const PagedKvLayout& layout, int64_t n_pages, HostTierMemory* out) {
  if (out == nullptr || n_pages <= 0 || layout.n_kv_heads <= 0 || layout.page_size <= 0 ||
      layout.head_dim <= 0) {
    return cudaErrorInvalidValue;
  }
  *out = HostTierMemory{};
  const size_t bytes = HostTierBytes(layout, n_pages);
  void* host = nullptr;
  if (const cudaError_t err = cudaHostAlloc(&host, bytes, cudaHostAllocMapped);
      err != cudaSuccess) {
    return err;
  }
  void* device = nullptr;
  if (const cudaError_t err = cudaHostGetDevicePointer(&device, host, 0); err != cudaSuccess) {
    cudaFreeHost(host);
    return err;
  }
  *out = HostTierMemory{.host = static_cast<Bf16*>(host),
                        .device = static_cast<Bf16*>(device),
                        .layout = layout,
                        .n_pages = n_pages,
                        .bytes = bytes};
  return cudaSuccess;
}

cudaError_t FreeHostTier(HostTierMemory* memory) {
  if (memory == nullptr) return cudaErrorInvalidValue;
  const cudaError_t err = memory->host != nullptr ? cudaFreeHost(memory->host) : cudaSuccess;
  *memory = HostTierMemory{};
  return err;
}

}  // namespace kvserve::kernels
