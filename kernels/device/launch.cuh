#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace kvserve::kernels::device {

// Launches `kernel` and returns the launch's own error. Through cudaLaunchKernelEx rather than
// <<<>>> so that the same source also runs under the CPU emulator of the gpu tests, which is
// plain C++ (tests/cuda_emulator).
template <typename... Params, typename... Args>
cudaError_t LaunchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                         cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace kvserve::kernels::device
