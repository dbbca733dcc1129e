#include "kernels/kv_compaction.h"

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 128;
constexpr int kRowsPerBlock = 8;

// Grid (tiles of kRowsPerBlock kept rows of the longest list, KV heads, sequences). Kept row r of
// (sequence s, head g) is scratch row (cu_kept[s] * n_kv_heads + g * keep + r), K then V; the copy
// runs to the scratch (to_scratch) or from it into cache row r.
__global__ void __launch_bounds__(kThreads)
    CompactionCopyKernel(KvCompactionParams p, bool to_scratch) {
  const int seq = blockIdx.z;
  const int kv_head = blockIdx.y;
  const int keep = p.cu_kept[seq + 1] - p.cu_kept[seq];
  const int first = blockIdx.x * kRowsPerBlock;
  if (first >= keep) return;
  const int rows = min(kRowsPerBlock, keep - first);
  const int head_dim = p.cache.layout.head_dim;
  const int chunks = head_dim / 8;
  const size_t list = static_cast<size_t>(p.cu_kept[seq]) * p.cache.layout.n_kv_heads +
                      static_cast<size_t>(kv_head) * keep;
  __nv_bfloat16* pages = AsCuda(p.cache.pages);
  __nv_bfloat16* scratch = AsCuda(p.scratch);
  for (int c = threadIdx.x; c < rows * 2 * chunks; c += kThreads) {
    const int r = first + c / (2 * chunks);
    const int value = (c / chunks) % 2;
    const int part = c % chunks;
    const size_t scratch_at = ((list + r) * 2 + value) * head_dim + part * 8;
    if (to_scratch) {
      const size_t cache_at = p.cache.KeyOffset(seq, p.kept_rows[list + r], kv_head) +
                              static_cast<size_t>(value) * p.cache.layout.page_size * head_dim +
                              part * 8;
      device::Store8(scratch + scratch_at, device::Load8(pages + cache_at));
    } else {
      const size_t cache_at = p.cache.KeyOffset(seq, r, kv_head) +
                              static_cast<size_t>(value) * p.cache.layout.page_size * head_dim +
                              part * 8;
      device::Store8(pages + cache_at, device::Load8(scratch + scratch_at));
    }
  }
}

}  // namespace

cudaError_t LaunchKvCompaction(const KvCompactionParams& p, cudaStream_t stream) {
  const PagedKvLayout& l = p.cache.layout;
  if (p.num_seqs < 0 || p.num_seqs > 65535 || p.max_kept < 0 || p.total_kept < 0 ||
      l.n_kv_heads <= 0 || l.n_kv_heads > 65535 || l.page_size <= 0 || l.head_dim <= 0 ||
      l.head_dim % 8 != 0 || !device::Aligned16(p.cache.pages) || !device::Aligned16(p.scratch)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0 || p.max_kept == 0) return cudaSuccess;
  const dim3 grid((p.max_kept + kRowsPerBlock - 1) / kRowsPerBlock, l.n_kv_heads, p.num_seqs);
  // The kernel boundary orders every read of the first copy before any write of the second.
  cudaError_t err = device::LaunchKernel(CompactionCopyKernel, grid, kThreads, 0, stream, p, true);
  if (err != cudaSuccess) return err;
  return device::LaunchKernel(CompactionCopyKernel, grid, kThreads, 0, stream, p, false);
}

}  // namespace kvserve::kernels
