#include "kernels/kv_append.h"

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"
#include "kernels/device/sequence_of_row.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 128;

// One block per new token: every KV head's K and V row, eight bf16 per copy.
__global__ void __launch_bounds__(kThreads)
    KvAppendKernel(const __nv_bfloat16* k, int k_row_stride, const __nv_bfloat16* v,
                   int v_row_stride, RaggedBatch batch, PagedKvCache cache) {
  const int row = blockIdx.x;
  const int seq = device::SequenceOfRow(batch.cu_seqlens, batch.num_seqs, row);
  const int slot = batch.cache_positions[row];
  const int head_dim = cache.layout.head_dim;
  const int chunks_per_head = head_dim / 8;
  const int chunks = cache.layout.n_kv_heads * chunks_per_head;
  __nv_bfloat16* pages = AsCuda(cache.pages);
  for (int c = threadIdx.x; c < chunks; c += kThreads) {
    const int head = c / chunks_per_head;
    const int col = (c % chunks_per_head) * 8 + head * head_dim;
    const size_t key_at = cache.KeyOffset(seq, slot, head) + (c % chunks_per_head) * 8;
    const size_t value_at = key_at + static_cast<size_t>(cache.layout.page_size) * head_dim;
    device::Store8(pages + key_at,
                   device::Load8(k + static_cast<size_t>(row) * k_row_stride + col));
    device::Store8(pages + value_at,
                   device::Load8(v + static_cast<size_t>(row) * v_row_stride + col));
  }
}

}  // namespace

cudaError_t LaunchKvAppend(const Bf16* k, int k_row_stride, const Bf16* v, int v_row_stride,
                           const RaggedBatch& batch, const PagedKvCache& cache,
                           cudaStream_t stream) {
  const PagedKvLayout& l = cache.layout;
  if (batch.total_tokens < 0 || batch.num_seqs <= 0 || l.head_dim <= 0 || l.head_dim % 8 != 0 ||
      l.page_size <= 0 || l.n_kv_heads <= 0 || k_row_stride % 8 != 0 || v_row_stride % 8 != 0 ||
      !device::Aligned16(k) || !device::Aligned16(v) || !device::Aligned16(cache.pages)) {
    return cudaErrorInvalidValue;
  }
  if (batch.total_tokens == 0) return cudaSuccess;
  return device::LaunchKernel(KvAppendKernel, batch.total_tokens, kThreads, 0, stream, AsCuda(k),
                              k_row_stride, AsCuda(v), v_row_stride, batch, cache);
}

}  // namespace kvserve::kernels
