#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::bench {

// Device memory for the benchmark's own operands (the backend keeps to its pool; these kernels
// and GEMMs run outside it, before or after it exists). Freed with the buffer.
template <typename T>
class GpuBuffer {
 public:
  static absl::StatusOr<GpuBuffer> Allocate(size_t count) {
    void* memory = nullptr;
    const size_t bytes = (count == 0 ? 1 : count) * sizeof(T);
    if (cudaMalloc(&memory, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear it: the caller may carry on with smaller shapes
      return absl::ResourceExhaustedError(
          absl::StrCat("cudaMalloc of ", bytes >> 20, " MiB failed"));
    }
    return GpuBuffer(static_cast<T*>(memory), count);
  }
  // Copies `count` host values in.
  static absl::StatusOr<GpuBuffer> Upload(const T* host, size_t count) {
    auto b = Allocate(count);
    if (!b.ok()) return b.status();
    if (auto s = cuda::CudaStatus(
            cudaMemcpy(b->data(), host, count * sizeof(T), cudaMemcpyHostToDevice), "upload");
        !s.ok()) {
      return s;
    }
    return b;
  }

  GpuBuffer(GpuBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(other.count_) {}
  GpuBuffer& operator=(GpuBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  GpuBuffer(const GpuBuffer&) = delete;
  GpuBuffer& operator=(const GpuBuffer&) = delete;
  ~GpuBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }

  T* data() const { return data_; }
  size_t count() const { return count_; }

 private:
  GpuBuffer(T* data, size_t count) : data_(data), count_(count) {}
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace kvserve::bench
