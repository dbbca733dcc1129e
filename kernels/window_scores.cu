#include "kernels/window_scores.h"

#include <cuda_bf16.h>

#include <cmath>

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/dynamic_shared.cuh"
#include "kernels/device/launch.cuh"
#include "kernels/device/warp_reduce.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

// A block takes one (sequence, KV head, split of kSplitKeys keys) and all window queries of the
// KV head's query heads; warp w owns query heads w, w + kWarps, ... of the group, so each row's
// softmax state is touched by one warp only. Keys are staged kTileKeys at a time, lane taking keys
// lane and lane + 32.
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileKeys = 64;
constexpr int kSplitKeys = 256;
constexpr int kMaxQueryFloats = 16384;  // group * window * head_dim staged as floats
constexpr int kMaxHeadDim = 256;

int Splits(int keys) { return (keys + kSplitKeys - 1) / kSplitKeys; }

struct WindowArgs {
  const __nv_bfloat16* q;
  int q_row_stride;
  const int32_t* cu_seqlens;
  ScoredPrefixes prefixes;
  PagedKvCache cache;
  int group;
  int max_splits;
  float scale;
  float* scores;
  float* stats;  // [num_seqs][max_splits][n_heads][max_window] of (max, sum)
};

// Shared memory: the group's window queries [group * window][head_dim], a key tile
// [kTileKeys][head_dim + 1] (odd stride: lanes read different banks), and each row's (max, sum).
struct Shared {
  float* q;
  float* k;
  float* row_max;
  float* row_sum;
};

size_t SharedFloats(int rows, int head_dim) {
  return static_cast<size_t>(rows) * head_dim + static_cast<size_t>(kTileKeys) * (head_dim + 1) +
         2 * static_cast<size_t>(rows);
}

__device__ Shared CarveShared(int rows, int head_dim) {
  float* base = reinterpret_cast<float*>(device::DynamicShared());
  Shared s;
  s.q = base;
  s.k = s.q + rows * head_dim;
  s.row_max = s.k + kTileKeys * (head_dim + 1);
  s.row_sum = s.row_max + rows;
  return s;
}

// Stages the window queries of the block's query heads as floats: row gh * window + i is query
// head kv_head * group + gh at window query i.
__device__ void LoadWindowQueries(const WindowArgs& a, int seq, int kv_head, int window,
                                  float* q_s) {
  const int head_dim = a.cache.layout.head_dim;
  const int first_row = a.cu_seqlens[seq + 1] - window;
  const int rows = a.group * window;
  for (int e = threadIdx.x; e < rows * head_dim; e += kThreads) {
    const int r = e / head_dim;
    const int c = e % head_dim;
    const int head = kv_head * a.group + r / window;
    const size_t at = static_cast<size_t>(first_row + r % window) * a.q_row_stride +
                      static_cast<size_t>(head) * head_dim + c;
    q_s[e] = __bfloat162float(a.q[at]);
  }
}

// Stages keys [key0, key0 + kTileKeys) as floats, zeros past `key_end`.
__device__ void LoadKeyTile(const WindowArgs& a, int seq, int kv_head, int key0, int key_end,
                            float* k_s) {
  const int head_dim = a.cache.layout.head_dim;
  const __nv_bfloat16* pages = AsCuda(a.cache.pages);
  for (int e = threadIdx.x; e < kTileKeys * head_dim; e += kThreads) {
    const int j = e / head_dim;
    const int c = e % head_dim;
    float v = 0.0f;
    if (key0 + j < key_end)
      v = __bfloat162float(pages[a.cache.KeyOffset(seq, key0 + j, kv_head) + c]);
    k_s[j * (head_dim + 1) + c] = v;
  }
}

__device__ float Dot(const float* q, const float* k, int head_dim) {
  float sum = 0.0f;
  for (int c = 0; c < head_dim; ++c) sum = fmaf(q[c], k[c], sum);
  return sum;
}

__device__ size_t StatsAt(const WindowArgs& a, int seq, int split, int head, int i) {
  const int n_heads = a.group * a.cache.layout.n_kv_heads;
  return ((static_cast<size_t>(seq) * a.max_splits + split) * n_heads + head) *
             a.prefixes.max_window +
         i;
}

// Pass 1. Grid (key splits of the longest cache, KV heads, sequences): each window query's
// softmax max and sum over the keys of the split it sees (key j <= n - window + i).
__global__ void __launch_bounds__(kThreads) WindowStatsKernel(WindowArgs a) {
  const int seq = blockIdx.z;
  const int kv_head = blockIdx.y;
  const int split = blockIdx.x;
  const int n = a.prefixes.kv_lens[seq];
  const int window = a.prefixes.windows[seq];
  const int key_begin = split * kSplitKeys;
  if (window == 0 || key_begin >= n) return;
  const int key_end = min(n, key_begin + kSplitKeys);
  const int head_dim = a.cache.layout.head_dim;
  const int rows = a.group * window;
  const Shared s = CarveShared(rows, head_dim);
  LoadWindowQueries(a, seq, kv_head, window, s.q);
  for (int r = threadIdx.x; r < rows; r += kThreads) {
    s.row_max[r] = -INFINITY;
    s.row_sum[r] = 0.0f;
  }
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  for (int key0 = key_begin; key0 < key_end; key0 += kTileKeys) {
    __syncthreads();  // the previous tile is used up (and the queries are staged)
    LoadKeyTile(a, seq, kv_head, key0, key_end, s.k);
    __syncthreads();
    for (int gh = warp; gh < a.group; gh += kWarps) {
      for (int i = 0; i < window; ++i) {
        const int r = gh * window + i;
        const int limit = n - window + i + 1;  // keys this query sees
        const int j0 = key0 + lane;
        const int j1 = key0 + lane + 32;
        float s0 = Dot(s.q + r * head_dim, s.k + lane * (head_dim + 1), head_dim) * a.scale;
        float s1 = Dot(s.q + r * head_dim, s.k + (lane + 32) * (head_dim + 1), head_dim) * a.scale;
        if (j0 >= limit || j0 >= key_end) s0 = -INFINITY;
        if (j1 >= limit || j1 >= key_end) s1 = -INFINITY;
        const float old_max = s.row_max[r];
        const float new_max = fmaxf(old_max, device::GroupMax(fmaxf(s0, s1)));
        // A row that has seen no key yet keeps a zero sum (exp of -inf - -inf would be NaN).
        const float base = new_max == -INFINITY ? 0.0f : new_max;
        const float tile_sum = device::GroupSum(expf(s0 - base) + expf(s1 - base));
        const float old_sum = s.row_sum[r];
        __syncwarp();  // every lane has read the row's state before lane 0 replaces it
        if (lane == 0) {
          s.row_max[r] = new_max;
          s.row_sum[r] = old_sum * expf(old_max - base) + tile_sum;
        }
        __syncwarp();
      }
    }
  }
  __syncthreads();
  for (int r = threadIdx.x; r < rows; r += kThreads) {
    const size_t at = StatsAt(a, seq, split, kv_head * a.group + r / window, r % window);
    a.stats[2 * at] = s.row_max[r];
    a.stats[2 * at + 1] = s.row_sum[r];
  }
}

// Pass 2. Grid (key splits of the longest cache, KV heads, sequences): combines every split's
// statistics into each window query's softmax, then sums the probabilities of the split's prefix
// keys over the window queries.
__global__ void __launch_bounds__(kThreads) WindowSumKernel(WindowArgs a) {
  const int seq = blockIdx.z;
  const int kv_head = blockIdx.y;
  const int split = blockIdx.x;
  const int n = a.prefixes.kv_lens[seq];
  const int window = a.prefixes.windows[seq];
  const int prefix = n - window;
  const int key_begin = split * kSplitKeys;
  if (window == 0 || key_begin >= prefix) return;
  const int key_end = min(prefix, key_begin + kSplitKeys);
  const int head_dim = a.cache.layout.head_dim;
  const int rows = a.group * window;
  const int splits = (n + kSplitKeys - 1) / kSplitKeys;
  const Shared s = CarveShared(rows, head_dim);
  LoadWindowQueries(a, seq, kv_head, window, s.q);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  for (int gh = warp; gh < a.group; gh += kWarps) {
    for (int i = 0; i < window; ++i) {
      const int head = kv_head * a.group + gh;
      float m = -INFINITY;
      for (int t = lane; t < splits; t += 32)
        m = fmaxf(m, a.stats[2 * StatsAt(a, seq, t, head, i)]);
      m = device::GroupMax(m);  // finite: every query sees key 0
      float l = 0.0f;
      for (int t = lane; t < splits; t += 32) {
        const size_t at = StatsAt(a, seq, t, head, i);
        const float split_max = a.stats[2 * at];
        if (split_max != -INFINITY) l += a.stats[2 * at + 1] * expf(split_max - m);
      }
      l = device::GroupSum(l);
      if (lane == 0) {
        s.row_max[gh * window + i] = m;
        s.row_sum[gh * window + i] = l;
      }
    }
  }
  float* out = a.scores +
               static_cast<size_t>(a.prefixes.cu_prefix[seq]) * a.group * a.cache.layout.n_kv_heads;
  for (int key0 = key_begin; key0 < key_end; key0 += kTileKeys) {
    __syncthreads();  // the statistics are in place; the previous tile is used up
    LoadKeyTile(a, seq, kv_head, key0, key_end, s.k);
    __syncthreads();
    for (int gh = warp; gh < a.group; gh += kWarps) {
      float acc0 = 0.0f;
      float acc1 = 0.0f;
      for (int i = 0; i < window; ++i) {
        const int r = gh * window + i;
        const float m = s.row_max[r];
        const float inv = 1.0f / s.row_sum[r];
        const float s0 = Dot(s.q + r * head_dim, s.k + lane * (head_dim + 1), head_dim) * a.scale;
        const float s1 =
            Dot(s.q + r * head_dim, s.k + (lane + 32) * (head_dim + 1), head_dim) * a.scale;
        acc0 += expf(s0 - m) * inv;
        acc1 += expf(s1 - m) * inv;
      }
      // Every prefix key is visible to every window query.
      float* head_out = out + static_cast<size_t>(kv_head * a.group + gh) * prefix;
      if (key0 + lane < key_end) head_out[key0 + lane] = acc0;
      if (key0 + lane + 32 < key_end) head_out[key0 + lane + 32] = acc1;
    }
  }
}

}  // namespace

size_t WindowScoresScratchFloats(int num_seqs, int max_kv_len, int n_heads, int max_window) {
  return size_t{2} * num_seqs * Splits(max_kv_len) * n_heads * max_window;
}

cudaError_t LaunchWindowScores(const WindowScoresParams& p, cudaStream_t stream) {
  const PagedKvLayout& l = p.cache.layout;
  const ScoredPrefixes& b = p.prefixes;
  if (l.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % l.n_kv_heads != 0 || l.page_size <= 0 ||
      l.head_dim <= 0 || l.head_dim > kMaxHeadDim || b.num_seqs < 0 || b.max_kv_len < 0 ||
      b.max_window < 0) {
    return cudaErrorInvalidValue;
  }
  const int group = p.n_heads / l.n_kv_heads;
  if (static_cast<long long>(group) * b.max_window * l.head_dim > kMaxQueryFloats) {
    return cudaErrorInvalidValue;
  }
  if (b.num_seqs == 0 || b.max_kv_len == 0 || b.max_window == 0) return cudaSuccess;
  const WindowArgs args{.q = AsCuda(p.q),
                        .q_row_stride = p.q_row_stride,
                        .cu_seqlens = p.cu_seqlens,
                        .prefixes = b,
                        .cache = p.cache,
                        .group = group,
                        .max_splits = Splits(b.max_kv_len),
                        .scale = p.scale,
                        .scores = p.scores,
                        .stats = p.scratch};
  const size_t shared_bytes = sizeof(float) * SharedFloats(group * b.max_window, l.head_dim);
  for (auto kernel : {WindowStatsKernel, WindowSumKernel}) {
    const cudaError_t err = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(args.max_splits, l.n_kv_heads, b.num_seqs);
  cudaError_t err =
      device::LaunchKernel(WindowStatsKernel, grid, kThreads, shared_bytes, stream, args);
  if (err != cudaSuccess) return err;
  return device::LaunchKernel(WindowSumKernel, grid, kThreads, shared_bytes, stream, args);
}

}  // namespace kvserve::kernels
