#include "kernels/residual_rmsnorm.h"

#include <cub/block/block_reduce.cuh>

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 256;

// One block per row. The sum of squares is taken over the bf16-rounded sum, the value the stream
// keeps, so the next layer's norm and this one agree.
__global__ void __launch_bounds__(kThreads)
    ResidualRmsNormKernel(__nv_bfloat16* x, const __nv_bfloat16* residual,
                          const __nv_bfloat16* weight, __nv_bfloat16* y, int dim, float eps) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage reduce_storage;
  __shared__ float inv_rms;

  const size_t base = static_cast<size_t>(blockIdx.x) * dim;
  __nv_bfloat16* xr = x + base;
  float sum_sq = 0.0f;
  for (int i = threadIdx.x; i < dim; i += kThreads) {
    float v = device::Load(xr + i);
    if (residual != nullptr) {
      const __nv_bfloat16 sum = __float2bfloat16_rn(v + device::Load(residual + base + i));
      xr[i] = sum;
      v = __bfloat162float(sum);
    }
    sum_sq += v * v;
  }
  const float total = Reduce(reduce_storage).Sum(sum_sq);
  if (threadIdx.x == 0) inv_rms = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);
  __syncthreads();
  // Each thread rereads only the elements it wrote itself.
  for (int i = threadIdx.x; i < dim; i += kThreads) {
    device::Store(y + base + i, device::Load(xr + i) * inv_rms * device::Load(weight + i));
  }
}

}  // namespace

cudaError_t LaunchResidualRmsNorm(Bf16* x, const Bf16* residual, const Bf16* weight, Bf16* y,
                                  int rows, int dim, float eps, cudaStream_t stream) {
  if (rows < 0 || dim <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  return device::LaunchKernel(ResidualRmsNormKernel, rows, kThreads, 0, stream, AsCuda(x),
                              AsCuda(residual), AsCuda(weight), AsCuda(y), dim, eps);
}

}  // namespace kvserve::kernels
