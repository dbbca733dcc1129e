#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/host_tier.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::cuda {

// The host tier's page memory for the CUDA backend: host page id p of the KvCacheManager's host
// pool is page p of one mapped pinned allocation (kernels/host_tier.h, bf16, head-major per
// page), which kernels write and gather from directly. It grows as larger ids appear, up to the
// pool's size (--kv-host-memory): growing drains the device and copies the pages over.
class PinnedHostTier {
 public:
  PinnedHostTier() = default;
  ~PinnedHostTier();
  PinnedHostTier(const PinnedHostTier&) = delete;
  PinnedHostTier& operator=(const PinnedHostTier&) = delete;

  // The most pages the tier may reach (the host pool's size); unlimited (-1) until set.
  void set_max_pages(int64_t pages) { max_pages_ = pages; }
  // Makes pages [0, pages) addressable. ResourceExhausted beyond max_pages or when pinned memory
  // runs out.
  absl::Status Ensure(const kernels::PagedKvLayout& layout, int64_t pages);

  kernels::Bf16* device_pages() const { return memory_.device; }
  int64_t pages() const { return memory_.n_pages; }
  size_t bytes() const { return memory_.bytes; }

 private:
  kernels::HostTierMemory memory_;
  int64_t max_pages_ = -1;
};

}  // namespace kvserve::cuda
