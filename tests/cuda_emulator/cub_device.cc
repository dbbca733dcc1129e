// The host side of the emulated cub::DeviceSegmentedRadixSort (include/cub/device/...).

#include <cstdio>

#include "cub/device/device_segmented_radix_sort.cuh"
#include "device_memory.h"

namespace kvserve::cuda_emulator {

bool DeviceRange(const void* ptr, size_t bytes) {
  return bytes == 0 || DeviceMemory::Contains(ptr, bytes);
}

cudaError_t CubMisuse(const char* what) {
  std::fprintf(stderr, "cuda emulator: cub::DeviceSegmentedRadixSort: %s\n", what);
  return cudaErrorInvalidValue;
}

}  // namespace kvserve::cuda_emulator
