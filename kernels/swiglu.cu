#include "kernels/swiglu.h"

#include <algorithm>

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 256;

// A grid-stride loop over the [rows][ffn] outputs.
__global__ void __launch_bounds__(kThreads)
    SwigluKernel(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int rows, int ffn) {
  const size_t total = static_cast<size_t>(rows) * ffn;
  for (size_t idx = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<size_t>(gridDim.x) * kThreads) {
    const size_t row = idx / ffn;
    const size_t col = idx % ffn;
    const __nv_bfloat16* g = gate_up + row * 2 * ffn;
    const float gate = device::Load(g + col);
    const float up = device::Load(g + ffn + col);
    // silu(g) = g / (1 + e^-g): a very negative g gives e^-g = inf and a silu of -0.
    device::Store(out + idx, gate / (1.0f + expf(-gate)) * up);
  }
}

}  // namespace

cudaError_t LaunchSwiglu(const Bf16* gate_up, Bf16* out, int rows, int ffn, cudaStream_t stream) {
  if (rows < 0 || ffn <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const size_t total = static_cast<size_t>(rows) * ffn;
  const int blocks = static_cast<int>(std::min<size_t>((total + kThreads - 1) / kThreads, 65535));
  return device::LaunchKernel(SwigluKernel, blocks, kThreads, 0, stream, AsCuda(gate_up),
                              AsCuda(out), rows, ffn);
}

}  // namespace kvserve::kernels
