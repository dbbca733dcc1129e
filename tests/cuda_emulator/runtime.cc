// The host side of the emulated CUDA runtime: one device (shaped like an H100), memory, errors,
// function attributes and the grid launch.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "block_runner.h"
#include "cuda_runtime.h"
#include "device_memory.h"
#include "stream_scheduler.h"

namespace kvserve::cuda_emulator {
namespace {

// Smaller than an H100's 80 GiB: a backend that takes a fraction of it maps only that much.
constexpr size_t kDeviceBytes = size_t{16} << 30;
constexpr int kMultiprocessors = 132;
constexpr int kDefaultDynamicShared = 48 * 1024;  // without cudaFuncSetAttribute
constexpr int kMaxDynamicShared = 227 * 1024;     // Hopper's opt-in limit per block
constexpr unsigned kMaxThreadsPerBlock = 1024;

cudaError_t& LastError() {
  static cudaError_t error = cudaSuccess;
  return error;
}

cudaError_t Record(cudaError_t error) {
  if (error != cudaSuccess) LastError() = error;
  return error;
}

std::map<const void*, int>& DynamicSharedLimits() {
  static std::map<const void*, int> limits;
  return limits;
}

ThreadOrder OrderFromEnvironment() {
  const char* order = std::getenv("KVSERVE_CUDA_EMULATOR_ORDER");
  return order != nullptr && std::strcmp(order, "reverse") == 0 ? ThreadOrder::kReverse
                                                                : ThreadOrder::kForward;
}

bool ValidShape(const dim3& grid, const dim3& block) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  return block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 && block.y <= 1024 &&
         block.z <= 64 && threads <= kMaxThreadsPerBlock && grid.x >= 1 && grid.y >= 1 &&
         grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535;
}

// Dynamic shared memory, 1 KiB aligned (kernels may ask for 128).
struct AlignedFree {
  void operator()(unsigned char* p) const { std::free(p); }
};

}  // namespace

namespace {

cudaError_t RunGrid(const cudaLaunchConfig_t& config, const std::function<void()>& thread) {
  const size_t shared_bytes = std::max<size_t>(config.dynamicSmemBytes, 1);
  std::unique_ptr<unsigned char, AlignedFree> shared(
      static_cast<unsigned char*>(std::aligned_alloc(1024, (shared_bytes + 1023) / 1024 * 1024)));
  const ThreadOrder order = OrderFromEnvironment();
  const dim3& grid = config.gridDim;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        // Shared memory starts as NaN bytes: a kernel that reads what it never wrote sees NaN.
        std::memset(shared.get(), 0xff, shared_bytes);
        const std::string failure =
            RunBlock(grid, config.blockDim, uint3{x, y, z}, shared.get(), order, thread);
        if (!failure.empty()) {
          std::fprintf(stderr, "cuda emulator: kernel failed in block (%u, %u, %u): %s\n", x, y, z,
                       failure.c_str());
          return Record(cudaErrorLaunchFailure);
        }
      }
    }
  }
  return cudaSuccess;
}

}  // namespace

std::atomic<uint64_t>& Launches() {
  static std::atomic<uint64_t> launches{0};
  return launches;
}

uint64_t LaunchCount() { return Launches().load(); }

cudaError_t LaunchGrid(const cudaLaunchConfig_t& config, const void* kernel,
                       std::function<void()> thread) {
  // A bad shape is refused at the launch, as CUDA does; faults show when the grid runs.
  if (!ValidShape(config.gridDim, config.blockDim)) return Record(cudaErrorInvalidConfiguration);
  const auto limit = DynamicSharedLimits().find(kernel);
  const size_t allowed =
      limit == DynamicSharedLimits().end() ? kDefaultDynamicShared : limit->second;
  if (config.dynamicSmemBytes > allowed) return Record(cudaErrorInvalidValue);
  ++Launches();
  return Record(Enqueue(config.stream, [config, thread = std::move(thread)] {
    return Record(RunGrid(config, thread));
  }));
}

}  // namespace kvserve::cuda_emulator

namespace emu = kvserve::cuda_emulator;

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return cudaErrorInvalidValue;
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return cudaErrorInvalidValue;
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : emu::Record(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr || device != 0) return cudaErrorInvalidValue;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = static_cast<int>(emu::kMaxThreadsPerBlock);
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = emu::kDefaultDynamicShared;
      return cudaSuccess;
    case cudaDevAttrWarpSize:
      *value = 32;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = emu::kMultiprocessors;
      return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr || device != 0) return cudaErrorInvalidValue;
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "CUDA emulator");
  prop->multiProcessorCount = emu::kMultiprocessors;
  prop->totalGlobalMem = emu::kDeviceBytes;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return cudaErrorInvalidValue;
  *total_bytes = emu::kDeviceBytes;
  const size_t used = emu::DeviceMemory::BytesInUse();
  *free_bytes = used < emu::kDeviceBytes ? emu::kDeviceBytes - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  *ptr = emu::DeviceMemory::Allocate(bytes);
  return *ptr != nullptr ? cudaSuccess : emu::Record(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  // cudaFree synchronises the device first: queued work may still use the memory.
  if (const cudaError_t err = emu::DrainAll(); err != cudaSuccess) return err;
  return emu::DeviceMemory::Free(ptr) ? cudaSuccess : emu::Record(cudaErrorInvalidDevicePointer);
}

namespace {

// Device memory, or pinned host memory mapped into the device's address space.
bool DeviceVisible(const void* ptr, size_t bytes) {
  return emu::DeviceMemory::Contains(ptr, bytes) || emu::PinnedMemory::Contains(ptr, bytes, true);
}

bool Pinned(const void* ptr, size_t bytes) {
  return emu::PinnedMemory::Contains(ptr, bytes, false);
}

// The side a copy names as device memory must lie in one allocation, as large as the copy.
cudaError_t CheckCopy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst == nullptr || src == nullptr || (dst_device && !DeviceVisible(dst, bytes)) ||
      (src_device && !DeviceVisible(src, bytes))) {
    return emu::Record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t err = CheckCopy(dst, src, bytes, kind); err != cudaSuccess) return err;
  // On the legacy default stream: after every blocking stream, and the host waits for it.
  emu::CountHostWait();
  return emu::Enqueue(nullptr, [=] {
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t err = CheckCopy(dst, src, bytes, kind); err != cudaSuccess) return err;
  auto copy = [=] {
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  };
  // Pageable host memory is copied before the call returns, after the stream's earlier work (as
  // CUDA stages it); only copies between device and pinned memory stay in the stream.
  const bool pageable = (kind == cudaMemcpyHostToDevice && !Pinned(src, bytes)) ||
                        (kind == cudaMemcpyDeviceToHost && !Pinned(dst, bytes)) ||
                        kind == cudaMemcpyHostToHost;
  if (pageable) {
    if (const cudaError_t err = emu::DrainStream(stream); err != cudaSuccess) return err;
    // The host waited for the stream (a capturing stream refused it above).
    emu::CountHostWait();
    return copy();
  }
  return emu::Enqueue(stream, copy);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!DeviceVisible(ptr, bytes)) return emu::Record(cudaErrorInvalidValue);
  return emu::Enqueue(stream, [=] {
    std::memset(ptr, value, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return emu::Record(cudaErrorInvalidValue);
  for (size_t row = 0; row < height; ++row) {
    const cudaError_t err = cudaMemcpy(static_cast<char*>(dst) + row * dpitch,
                                       static_cast<const char*>(src) + row * spitch, width, kind);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

cudaError_t cudaMemset2D(void* ptr, size_t pitch, int value, size_t width, size_t height) {
  if (width > pitch) return emu::Record(cudaErrorInvalidValue);
  for (size_t row = 0; row < height; ++row) {
    const cudaError_t err = cudaMemset(static_cast<char*>(ptr) + row * pitch, value, width);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags) {
  constexpr unsigned kKnown =
      cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined;
  if (ptr == nullptr || (flags & ~kKnown) != 0) return emu::Record(cudaErrorInvalidValue);
  *ptr = emu::PinnedMemory::Allocate(bytes, (flags & cudaHostAllocMapped) != 0);
  return *ptr != nullptr ? cudaSuccess : emu::Record(cudaErrorMemoryAllocation);
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  // CUDA synchronises the device before it unpins memory.
  if (const cudaError_t err = emu::DrainAll(); err != cudaSuccess) return err;
  return emu::PinnedMemory::Free(ptr) ? cudaSuccess : emu::Record(cudaErrorInvalidValue);
}

cudaError_t cudaHostGetDevicePointer(void** device_ptr, void* host_ptr, unsigned int flags) {
  if (device_ptr == nullptr || flags != 0 || !emu::PinnedMemory::Contains(host_ptr, 1, true)) {
    return emu::Record(cudaErrorInvalidValue);
  }
  *device_ptr = host_ptr;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = emu::LastError();
  emu::LastError() = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return emu::LastError(); }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnjoined:
      return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureIsolation:
      return "cudaErrorStreamCaptureIsolation";
    case cudaErrorIllegalState:
      return "cudaErrorIllegalState";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (the emulator printed why)";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined:
      return "capture sequence contained a fork that was not joined to the primary stream";
    case cudaErrorStreamCaptureIsolation:
      return "dependency created on uncaptured work in another stream";
    case cudaErrorIllegalState:
      return "the operation cannot be performed in the present state";
  }
  return "unknown error";
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr || attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > emu::kMaxDynamicShared) {
    return emu::Record(cudaErrorInvalidValue);
  }
  emu::DynamicSharedLimits()[func] = value;
  return cudaSuccess;
}
