#include "engine/runtime/cuda/row_gather.h"

#include "kernels/device/launch.cuh"

namespace kvserve::cuda {
namespace {

constexpr int kThreads = 256;

// One block per gathered row; bf16 bits are moved as 16-bit words (no arithmetic).
__global__ void __launch_bounds__(kThreads)
    RowGatherKernel(const uint16_t* src, int src_stride, uint16_t* dst, int dst_stride, int cols,
                    const int32_t* rows) {
  const uint16_t* from = src + static_cast<size_t>(rows[blockIdx.x]) * src_stride;
  uint16_t* to = dst + static_cast<size_t>(blockIdx.x) * dst_stride;
  for (int c = threadIdx.x; c < cols; c += kThreads) to[c] = from[c];
}

}  // namespace

cudaError_t LaunchRowGather(const kernels::Bf16* src, int src_stride, kernels::Bf16* dst,
                            int dst_stride, int cols, const int32_t* rows, int n,
                            cudaStream_t stream) {
  if (n < 0 || cols < 0 || src_stride < cols || dst_stride < cols) return cudaErrorInvalidValue;
  if (n == 0 || cols == 0) return cudaSuccess;
  return kernels::device::LaunchKernel(RowGatherKernel, n, kThreads, 0, stream,
                                       reinterpret_cast<const uint16_t*>(src), src_stride,
                                       reinterpret_cast<uint16_t*>(dst), dst_stride, cols, rows);
}

}  // namespace kvserve::cuda
