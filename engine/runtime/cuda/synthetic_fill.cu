#include "engine/runtime/cuda/synthetic_fill.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/device/launch.cuh"

namespace kvserve::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 65535;

// Draw `index` (0-based) of splitmix64 seeded with `seed`: the host Rng's state after index + 1
// steps, mixed. Counter-based, so each element is computed on its own.
__device__ inline uint64_t SplitMix64(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

__global__ void __launch_bounds__(kThreads)
    UniformKernel(__nv_bfloat16* out, uint64_t n, uint64_t seed, uint64_t first, float scale) {
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<uint64_t>(gridDim.x) * kThreads) {
    const uint64_t bits = SplitMix64(seed, first + i) >> 40;
    // The host's float operations in its order, each rounded as the host rounds it.
    const float unit = __fsub_rn(__fmul_rn(static_cast<float>(bits), 2.0f / 16777216.0f), 1.0f);
    out[i] = __float2bfloat16_rn(__fmul_rn(scale, unit));
  }
}

__global__ void __launch_bounds__(kThreads) OnesKernel(__nv_bfloat16* out, uint64_t n) {
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<uint64_t>(gridDim.x) * kThreads) {
    out[i] = __float2bfloat16_rn(1.0f);
  }
}

int Blocks(uint64_t n) {
  return static_cast<int>(
      std::max<uint64_t>(1, std::min<uint64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)));
}

__nv_bfloat16* AsCuda(kernels::Bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

}  // namespace

cudaError_t LaunchSyntheticUniform(kernels::Bf16* out, uint64_t n, uint64_t seed, uint64_t first,
                                   float scale, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return kernels::device::LaunchKernel(UniformKernel, Blocks(n), kThreads, 0, stream, AsCuda(out),
                                       n, seed, first, scale);
}

cudaError_t LaunchFillOnes(kernels::Bf16* out, uint64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return kernels::device::LaunchKernel(OnesKernel, Blocks(n), kThreads, 0, stream, AsCuda(out), n);
}

}  // namespace kvserve::cuda
