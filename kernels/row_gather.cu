#include "kernels/row_gather.h"

#include "kernels/device/launch.cuh"
#include "kernels/device/sequence_of_row.cuh"

namespace kvserve::kernels {
namespace {

constexpr int kThreads = 256;

// One block per gathered row; bf16 bits are moved as 16-bit words (no arithmetic).
__global__ void __launch_bounds__(kThreads) RowGatherKernel(RowGatherParams p) {
  const int i = blockIdx.x;
  int src_row = p.rows[i];
  if (p.cu_dst != nullptr) src_row += p.cu_src[device::SequenceOfRow(p.cu_dst, p.num_seqs, i)];
  const auto* src = reinterpret_cast<const uint16_t*>(p.src);
  auto* dst = reinterpret_cast<uint16_t*>(p.dst);
  for (int c = threadIdx.x; c < p.cols; c += kThreads) {
    dst[static_cast<size_t>(i) * p.dst_stride + c] =
        src[static_cast<size_t>(src_row) * p.src_stride + c];
  }
  if (p.src_ids != nullptr && threadIdx.x == 0) p.dst_ids[i] = p.src_ids[src_row];
}

}  // namespace

cudaError_t LaunchRowGather(const RowGatherParams& p, cudaStream_t stream) {
  if (p.n < 0 || p.cols < 0 || p.src_stride < p.cols || p.dst_stride < p.cols ||
      (p.cu_dst != nullptr && (p.cu_src == nullptr || p.num_seqs <= 0)) ||
      (p.src_ids != nullptr && p.dst_ids == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (p.n == 0 || (p.cols == 0 && p.src_ids == nullptr)) return cudaSuccess;
  return device::LaunchKernel(RowGatherKernel, p.n, kThreads, 0, stream, p);
}

cudaError_t LaunchRowGather(const Bf16* src, int src_stride, Bf16* dst, int dst_stride, int cols,
                            const int32_t* rows, int n, cudaStream_t stream) {
  return LaunchRowGather(RowGatherParams{.src = src,
                                         .src_stride = src_stride,
                                         .dst = dst,
                                         .dst_stride = dst_stride,
                                         .cols = cols,
                                         .rows = rows,
                                         .n = n},
                         stream);
}

}  // namespace kvserve::kernels
