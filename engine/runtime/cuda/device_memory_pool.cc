#include "engine/runtime/cuda/device_memory_pool.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::cuda {
namespace {

std::string MiB(size_t bytes) { return absl::StrCat(bytes >> 20, " MiB"); }

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceMemoryPool>> DeviceMemoryPool::Create(double fraction) {
  if (!(fraction > 0.0 && fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu_memory_fraction must be in (0, 1], got ", fraction));
  }
  size_t free_bytes = 0, total_bytes = 0;
  if (auto s = CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"); !s.ok()) {
    return s;
  }
  // Whole MiB: the last partial one is never worth a failed allocation.
  const size_t capacity =
      static_cast<size_t>(static_cast<double>(free_bytes) * fraction) >> 20 << 20;
  void* memory = nullptr;
  if (capacity == 0 || cudaMalloc(&memory, capacity) != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat("cuda backend: cannot reserve ", MiB(capacity),
                                                     " (gpu_memory_fraction ", fraction, " of ",
                                                     MiB(free_bytes), " free)"));
  }
  return std::unique_ptr<DeviceMemoryPool>(
      new DeviceMemoryPool(static_cast<char*>(memory), capacity));
}

DeviceMemoryPool::~DeviceMemoryPool() { cudaFree(base_); }

absl::StatusOr<void*> DeviceMemoryPool::TakePersistent(size_t bytes, absl::string_view what) {
  if (kv_ > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda backend: ", what, ": persistent memory after the KV arena opened"));
  }
  const size_t aligned = AlignDeviceBytes(bytes);
  if (aligned > kv_room()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cuda backend: ", what, " needs ", MiB(aligned), " of device memory; only ", MiB(kv_room()),
        " of the ", MiB(capacity_), " pool are left (raise gpu_memory_fraction?)"));
  }
  void* at = base_ + front_;
  front_ += aligned;
  return at;
}

absl::Status DeviceMemoryPool::EnsureKvBytes(size_t bytes) {
  if (bytes <= kv_) return absl::OkStatus();
  if (bytes > kv_room()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cuda backend: the KV arena would need ", MiB(bytes), " but only ",
                     MiB(kv_room()), " fit beside the weights and step scratch (pool ",
                     MiB(capacity_), "); lower the KV cache budget or raise gpu_memory_fraction"));
  }
  kv_ = bytes;
  return absl::OkStatus();
}

absl::StatusOr<char*> DeviceMemoryPool::StepScratch(size_t bytes) {
  const size_t aligned = AlignDeviceBytes(bytes);
  if (aligned > scratch_) {
    if (aligned > capacity_ - front_ - kv_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cuda backend: a step needs ", MiB(aligned), " of activation scratch but only ",
          MiB(capacity_ - front_ - kv_), " are free beside the weights and ", MiB(kv_),
          " of KV pages; use smaller prefill chunks"));
    }
    scratch_ = aligned;
  }
  return base_ + capacity_ - scratch_;
}

}  // namespace kvserve::cuda
