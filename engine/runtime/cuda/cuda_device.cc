#include "engine/runtime/cuda/cuda_device.h"

#include <cuda_runtime_api.h>

namespace kvserve::cuda {

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    // Without a driver the runtime records a sticky-looking error; clear it so later queries in
    // this process do not report it.
    cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace kvserve::cuda
