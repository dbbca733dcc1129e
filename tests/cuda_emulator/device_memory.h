#pragma once

#include <cstddef>

namespace kvserve::cuda_emulator {

// Device memory for the emulator: each allocation is host memory whose end (rounded up to CUDA's
// 256-byte alignment) touches an inaccessible page, and whose start follows one, so a kernel that
// runs off either end of a buffer crashes its test instead of reading a neighbour's data.
class DeviceMemory {
 public:
  static void* Allocate(size_t bytes);
  // False when `ptr` is not the start of a live allocation.
  static bool Free(void* ptr);
  // Whether [ptr, ptr + bytes) lies inside one live allocation.
  static bool Contains(const void* ptr, size_t bytes);
  static size_t BytesInUse();
};

// Page-locked host memory (cudaHostAlloc), guarded the same way, in a registry of its own: it is
// not device memory, except that mapped memory is what kernels may also read and write.
class PinnedMemory {
 public:
  static void* Allocate(size_t bytes, bool mapped);
  static bool Free(void* ptr);
  // Whether [ptr, ptr + bytes) lies inside one live pinned allocation (a mapped one if asked).
  static bool Contains(const void* ptr, size_t bytes, bool mapped_only);
};

}  // namespace kvserve::cuda_emulator
