#pragma once

#include <cuda_runtime.h>

namespace kvserve::kernels::device {

// The block's dynamic shared memory, 128-byte aligned. The CPU emulator of the gpu tests cannot
// declare an `extern __shared__` array in plain C++, so it hands out its own buffer.
__device__ inline unsigned char* DynamicShared() {
#if defined(KVSERVE_CUDA_EMULATOR)
  return ::kvserve::cuda_emulator::DynamicSharedMemory();
#else
  extern __shared__ __align__(128) unsigned char memory[];
  return memory;
#endif
}

}  // namespace kvserve::kernels::device
