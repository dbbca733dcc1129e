#include "engine/runtime/cuda/pinned_host_tier.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::cuda {

PinnedHostTier::~PinnedHostTier() {
  if (memory_.host != nullptr) {
    cudaDeviceSynchronize();  // no kernel still reads or writes the pages
    kernels::FreeHostTier(&memory_);
  }
}

absl::Status PinnedHostTier::Ensure(const kernels::PagedKvLayout& layout, int64_t pages) {
  if (pages <= memory_.n_pages) return absl::OkStatus();
  if (max_pages_ >= 0 && pages > max_pages_) {
    return absl::ResourceExhaustedError(absl::StrCat("cuda backend: host tier page ", pages - 1,
                                                     " beyond its ", max_pages_, " pages"));
  }
  // Grow geometrically so that a long prompt does not copy the tier page by page.
  int64_t want = std::max<int64_t>(pages, 2 * memory_.n_pages);
  if (max_pages_ >= 0) want = std::min(want, max_pages_);
  kernels::HostTierMemory grown;
  if (const cudaError_t e = kernels::AllocateHostTier(layout, want, &grown); e != cudaSuccess) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cuda backend: no pinned host memory for ", want, " host tier pages (",
                     kernels::HostTierBytes(layout, want), " bytes): ", cudaGetErrorString(e)));
  }
  if (memory_.host != nullptr) {
    // Pages never move while kernels may use them: every stream is drained first.
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "host tier growth"));
    std::memcpy(grown.host, memory_.host, memory_.bytes);
    kernels::FreeHostTier(&memory_);
  }
  memory_ = grown;
  return absl::OkStatus();
}

}  // namespace kvserve::cuda
