#include "kernels/rope.h"

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 128;

struct RopeArgs {
  __nv_bfloat16* q;
  int q_row_stride;
  int n_heads;
  __nv_bfloat16* k;
  int k_row_stride;
  int n_kv_heads;
  const int32_t* positions;
  const float* table;
  int max_positions;
  int head_dim;
  int rope_dim;
  bool adjacent;
};

// One block per token row; threads take (head, pair) items over the row's Q heads then K heads.
__global__ void __launch_bounds__(kThreads) RopeKernel(RopeArgs a) {
  const int row = blockIdx.x;
  const int pos = a.positions[row];
  if (pos < 0 || pos >= a.max_positions) return;
  const int half = a.rope_dim / 2;
  const float* cos_row = a.table + static_cast<size_t>(pos) * a.rope_dim;
  const float* sin_row = cos_row + half;
  const int items = (a.n_heads + a.n_kv_heads) * half;
  for (int item = threadIdx.x; item < items; item += kThreads) {
    const int head = item / half;
    const int i = item % half;
    __nv_bfloat16* v =
        head < a.n_heads
            ? a.q + static_cast<size_t>(row) * a.q_row_stride + head * a.head_dim
            : a.k + static_cast<size_t>(row) * a.k_row_stride + (head - a.n_heads) * a.head_dim;
    const int first = a.adjacent ? 2 * i : i;
    const int second = a.adjacent ? 2 * i + 1 : i + half;
    const float x0 = device::Load(v + first);
    const float x1 = device::Load(v + second);
    device::Store(v + first, x0 * cos_row[i] - x1 * sin_row[i]);
    device::Store(v + second, x0 * sin_row[i] + x1 * cos_row[i]);
  }
}

}  // namespace

cudaError_t LaunchRope(const RopeParams& p, cudaStream_t stream) {
  if (p.rows < 0 || p.rope_dim <= 0 || p.rope_dim % 2 != 0 || p.rope_dim > p.head_dim ||
      p.n_heads < 0 || p.n_kv_heads < 0) {
    return cudaErrorInvalidValue;
  }
  if (p.rows == 0 || p.n_heads + p.n_kv_heads == 0) return cudaSuccess;
  const RopeArgs args{.q = AsCuda(p.q),
                      .q_row_stride = p.q_row_stride,
                      .n_heads = p.n_heads,
                      .k = AsCuda(p.k),
                      .k_row_stride = p.k_row_stride,
                      .n_kv_heads = p.n_kv_heads,
                      .positions = p.positions,
                      .table = p.table,
                      .max_positions = p.max_positions,
                      .head_dim = p.head_dim,
                      .rope_dim = p.rope_dim,
                      .adjacent = p.pairs == RopePairs::kAdjacent};
  return device::LaunchKernel(RopeKernel, p.rows, kThreads, 0, stream, args);
}

}  // namespace kvserve::kernels
