#include "kernels/prefill_attention.h"

#include <mma.h>

#include <cmath>

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/dynamic_shared.cuh"
#include "kernels/device/launch.cuh"
#include "kernels/device/warp_reduce.cuh"

namespace kvserve::kernels {
namespace {

namespace wmma = nvcuda::wmma;
using device::AsCuda;

// A block takes 64 query rows (token, head of one GQA group), so K/V tiles are read once for the
// whole group; each of its 4 warps owns 16 rows through S, softmax, P and O and only syncs with
// itself, the block syncing only around the shared K/V tile.
constexpr int kBlockRows = 64;
constexpr int kBlockKeys = 64;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kFrag = 16;  // wmma m = n = k for bf16
// Row padding keeps wmma's leading dimensions legal (bf16: multiple of 8, float: of 4) and every
// 16-row fragment 32-byte aligned, while shifting rows across shared-memory banks.
constexpr int kBf16Pad = 8;
constexpr int kFloatPad = 4;
constexpr float kLog2e = 1.4426950408889634f;

template <int kHeadDim>
struct SharedLayout {
  static constexpr int kLdQkv = kHeadDim + kBf16Pad;
  static constexpr int kLdS = kBlockKeys + kFloatPad;
  static constexpr int kLdP = kBlockKeys + kBf16Pad;
  static constexpr int kLdO = kHeadDim + kFloatPad;
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(__nv_bfloat16) * kBlockRows * kLdQkv;
  static constexpr size_t kV = kK + sizeof(__nv_bfloat16) * kBlockKeys * kLdQkv;
  static constexpr size_t kS = kV + sizeof(__nv_bfloat16) * kBlockKeys * kLdQkv;
  static constexpr size_t kP = kS + sizeof(float) * kBlockRows * kLdS;
  static constexpr size_t kO = kP + sizeof(__nv_bfloat16) * kBlockRows * kLdP;
  static constexpr size_t kRowMax = kO + sizeof(float) * kBlockRows * kLdO;
  static constexpr size_t kRowSum = kRowMax + sizeof(float) * kBlockRows;
  static constexpr size_t kRowLimit = kRowSum + sizeof(float) * kBlockRows;
  static constexpr size_t kBytes = kRowLimit + sizeof(int) * kBlockRows;
  static_assert(kK % 32 == 0 && kV % 32 == 0 && kS % 32 == 0 && kP % 32 == 0 && kO % 32 == 0);
};

struct PrefillArgs {
  const __nv_bfloat16* q;
  int q_row_stride;
  __nv_bfloat16* out;
  int out_row_stride;
  const int32_t* cu_seqlens;
  const int32_t* positions;
  const int32_t* kv_lens;
  PagedKvCache cache;
  int group;            // query heads per KV head
  int tokens_per_tile;  // kBlockRows / group
  float scale_log2;     // softmax scale times log2(e): exponentials are exp2
};

// Grid: (token tiles of the longest sequence, KV heads, sequences). Row r of a block is token
// tile_start + r / group, query head kv_head * group + r % group.
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads) PrefillAttentionKernel(PrefillArgs a) {
  using L = SharedLayout<kHeadDim>;
  constexpr int kChunks = kHeadDim / 8;  // 16-byte copies per row
  unsigned char* smem = device::DynamicShared();
  auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ);
  auto* k_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kK);
  auto* v_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kV);
  auto* s_s = reinterpret_cast<float*>(smem + L::kS);
  auto* p_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kP);
  auto* o_s = reinterpret_cast<float*>(smem + L::kO);
  auto* row_max = reinterpret_cast<float*>(smem + L::kRowMax);
  auto* row_sum = reinterpret_cast<float*>(smem + L::kRowSum);
  auto* row_limit = reinterpret_cast<int*>(smem + L::kRowLimit);

  const int seq = blockIdx.z;
  const int kv_head = blockIdx.y;
  const int seq_begin = a.cu_seqlens[seq];
  const int seq_len = a.cu_seqlens[seq + 1] - seq_begin;
  const int tile_token = blockIdx.x * a.tokens_per_tile;
  if (tile_token >= seq_len) return;
  const int rows = min(a.tokens_per_tile, seq_len - tile_token) * a.group;
  const int kv_len = a.kv_lens[seq];
  const int tid = threadIdx.x;

  // Row state; padding rows see no key at all.
  for (int r = tid; r < kBlockRows; r += kThreads) {
    int limit = 0;
    if (r < rows) limit = min(kv_len, a.positions[seq_begin + tile_token + r / a.group] + 1);
    row_limit[r] = max(limit, 0);
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
  }
  for (int c = tid; c < kBlockRows * kChunks; c += kThreads) {
    const int r = c / kChunks;
    const int part = c % kChunks;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      const size_t token = seq_begin + tile_token + r / a.group;
      const int head = kv_head * a.group + r % a.group;
      v = device::Load8(a.q + token * a.q_row_stride + head * kHeadDim + part * 8);
    }
    device::Store8(q_s + r * L::kLdQkv + part * 8, v);
  }
  for (int i = tid; i < kBlockRows * L::kLdO; i += kThreads) o_s[i] = 0.0f;
  __syncthreads();

  int key_end = 0;  // keys any row of the tile sees
  for (int r = 0; r < rows; ++r) key_end = max(key_end, row_limit[r]);

  const int warp = tid / 32;
  const int lane = tid % 32;
  const int row0 = warp * kFrag;
  for (int key0 = 0; key0 < key_end; key0 += kBlockKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    for (int c = tid; c < kBlockKeys * kChunks; c += kThreads) {
      const int j = c / kChunks;
      const int part = c % kChunks;
      uint4 k = make_uint4(0, 0, 0, 0);
      uint4 v = make_uint4(0, 0, 0, 0);  // zeros past the end: 0 * garbage could be NaN
      if (key0 + j < key_end) {
        const size_t at = a.cache.KeyOffset(seq, key0 + j, kv_head) + part * 8;
        const __nv_bfloat16* pages = AsCuda(a.cache.pages);
        k = device::Load8(pages + at);
        v = device::Load8(pages + at + static_cast<size_t>(a.cache.layout.page_size) * kHeadDim);
      }
      device::Store8(k_s + j * L::kLdQkv + part * 8, k);
      device::Store8(v_s + j * L::kLdQkv + part * 8, v);
    }
    __syncthreads();
    if (row0 >= rows) continue;  // a warp of padding rows only keeps the barriers

    // S = Q K^T for this warp's rows; K row-major [key][d] is K^T column-major.
    {
      wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> s[kBlockKeys / kFrag];
#pragma unroll
      for (int n = 0; n < kBlockKeys / kFrag; ++n) wmma::fill_fragment(s[n], 0.0f);
#pragma unroll
      for (int d0 = 0; d0 < kHeadDim; d0 += kFrag) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, __nv_bfloat16, wmma::row_major> qa;
        wmma::load_matrix_sync(qa, q_s + row0 * L::kLdQkv + d0, L::kLdQkv);
#pragma unroll
        for (int n = 0; n < kBlockKeys / kFrag; ++n) {
          wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, __nv_bfloat16, wmma::col_major> kb;
          wmma::load_matrix_sync(kb, k_s + n * kFrag * L::kLdQkv + d0, L::kLdQkv);
          wmma::mma_sync(s[n], qa, kb, s[n]);
        }
      }
#pragma unroll
      for (int n = 0; n < kBlockKeys / kFrag; ++n) {
        wmma::store_matrix_sync(s_s + row0 * L::kLdS + n * kFrag, s[n], L::kLdS,
                                wmma::mem_row_major);
      }
    }
    __syncwarp();

    // Online softmax, one row at a time, each lane taking keys lane and lane + 32. P is rounded
    // to bf16 for the tensor cores, and the row sum adds the rounded values so that the
    // normalisation matches what P V sums.
    for (int rr = 0; rr < kFrag; ++rr) {
      const int r = row0 + rr;
      const int limit = row_limit[r];
      const float old_max = row_max[r];
      float s0 = s_s[r * L::kLdS + lane] * a.scale_log2;
      float s1 = s_s[r * L::kLdS + lane + 32] * a.scale_log2;
      if (key0 + lane >= limit) s0 = -INFINITY;
      if (key0 + lane + 32 >= limit) s1 = -INFINITY;
      const float new_max = fmaxf(old_max, device::GroupMax(fmaxf(s0, s1)));
      // A row that has seen no key yet keeps a zero state: subtracting 0 keeps exp2 at 0, not NaN.
      const float base = new_max == -INFINITY ? 0.0f : new_max;
      const __nv_bfloat16 p0 = __float2bfloat16_rn(exp2f(s0 - base));
      const __nv_bfloat16 p1 = __float2bfloat16_rn(exp2f(s1 - base));
      p_s[r * L::kLdP + lane] = p0;
      p_s[r * L::kLdP + lane + 32] = p1;
      const float tile_sum = device::GroupSum(__bfloat162float(p0) + __bfloat162float(p1));
      const float alpha = exp2f(old_max - base);
      for (int c = lane; c < kHeadDim; c += 32) o_s[r * L::kLdO + c] *= alpha;
      __syncwarp();  // every lane has read row_max[r] before lane 0 replaces it
      if (lane == 0) {
        row_max[r] = new_max;
        row_sum[r] = row_sum[r] * alpha + tile_sum;
      }
    }
    __syncwarp();

    // O += P V, the accumulator round-tripping through shared memory where the softmax rescales
    // it (wmma fragments do not say which row an element belongs to).
    {
      wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, __nv_bfloat16, wmma::row_major>
          pa[kBlockKeys / kFrag];
#pragma unroll
      for (int k0 = 0; k0 < kBlockKeys / kFrag; ++k0) {
        wmma::load_matrix_sync(pa[k0], p_s + row0 * L::kLdP + k0 * kFrag, L::kLdP);
      }
#pragma unroll
      for (int n = 0; n < kHeadDim / kFrag; ++n) {
        wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> o;
        float* o_tile = o_s + row0 * L::kLdO + n * kFrag;
        wmma::load_matrix_sync(o, o_tile, L::kLdO, wmma::mem_row_major);
#pragma unroll
        for (int k0 = 0; k0 < kBlockKeys / kFrag; ++k0) {
          wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, __nv_bfloat16, wmma::row_major> vb;
          wmma::load_matrix_sync(vb, v_s + k0 * kFrag * L::kLdQkv + n * kFrag, L::kLdQkv);
          wmma::mma_sync(o, pa[k0], vb, o);
        }
        wmma::store_matrix_sync(o_tile, o, L::kLdO, wmma::mem_row_major);
      }
    }
  }
  __syncwarp();

  for (int rr = 0; rr < kFrag; ++rr) {
    const int r = row0 + rr;
    if (r >= rows) break;
    const float sum = row_sum[r];
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const size_t token = seq_begin + tile_token + r / a.group;
    const int head = kv_head * a.group + r % a.group;
    __nv_bfloat16* dst = a.out + token * a.out_row_stride + head * kHeadDim;
    for (int c = lane; c < kHeadDim; c += 32) device::Store(dst + c, o_s[r * L::kLdO + c] * inv);
  }
}

template <int kHeadDim>
cudaError_t Launch(const PrefillArgs& args, int max_seqlen, int n_kv_heads, int num_seqs,
                   cudaStream_t stream) {
  constexpr size_t kBytes = SharedLayout<kHeadDim>::kBytes;
  cudaError_t err = cudaFuncSetAttribute(PrefillAttentionKernel<kHeadDim>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid((max_seqlen + args.tokens_per_tile - 1) / args.tokens_per_tile, n_kv_heads,
                  num_seqs);
  return device::LaunchKernel(PrefillAttentionKernel<kHeadDim>, grid, kThreads, kBytes, stream,
                              args);
}

}  // namespace

cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& p, cudaStream_t stream) {
  const PagedKvLayout& l = p.cache.layout;
  if (l.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % l.n_kv_heads != 0 ||
      p.n_heads / l.n_kv_heads > kBlockRows || l.page_size <= 0 ||
      (l.head_dim != 64 && l.head_dim != 128) || p.q_row_stride % 8 != 0 || p.batch.num_seqs < 0 ||
      p.batch.max_seqlen < 0 || !device::Aligned16(p.q) || !device::Aligned16(p.cache.pages)) {
    return cudaErrorInvalidValue;
  }
  if (p.batch.num_seqs == 0 || p.batch.max_seqlen == 0) return cudaSuccess;
  const int group = p.n_heads / l.n_kv_heads;
  const PrefillArgs args{.q = AsCuda(p.q),
                         .q_row_stride = p.q_row_stride,
                         .out = AsCuda(p.out),
                         .out_row_stride = p.out_row_stride,
                         .cu_seqlens = p.batch.cu_seqlens,
                         .positions = p.batch.cache_positions,
                         .kv_lens = p.kv_lens,
                         .cache = p.cache,
                         .group = group,
                         .tokens_per_tile = kBlockRows / group,
                         .scale_log2 = p.scale * kLog2e};
  if (l.head_dim == 64)
    return Launch<64>(args, p.batch.max_seqlen, l.n_kv_heads, p.batch.num_seqs, stream);
  return Launch<128>(args, p.batch.max_seqlen, l.n_kv_heads, p.batch.num_seqs, stream);
}

}  // namespace kvserve::kernels
