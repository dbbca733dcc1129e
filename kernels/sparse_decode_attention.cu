#include "kernels/sparse_decode_attention.h"

#include <cmath>

#include "kernels/decode_attention.h"
#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"
#include "kernels/device/warp_reduce.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTileKeys = kDecodeTileKeys;
constexpr int kMaxGroup = kDecodeMaxGroup;
constexpr float kLog2e = 1.4426950408889634f;

struct SparseArgs {
  const __nv_bfloat16* q;
  int q_row_stride;
  __nv_bfloat16* out;
  int out_row_stride;
  const __nv_bfloat16* pages;
  PagedKvLayout layout;
  PageListView lists;
  int group;
  int split_len;
  int num_splits;
  float scale_log2;
  float* partial_out;    // [seq][head][split][head_dim], unnormalised
  float* partial_stats;  // [seq][head][split][2]: running max (log2 domain) and sum
};

// Key j of a unit's list: row j % P of entry j / P, there if that entry has the row. Returns the
// key row's offset, or -1 for a row past a partial page's end.
__device__ inline int64_t KeyAt(const SparseArgs& a, size_t list, int j) {
  const int entry = j / a.layout.page_size;
  const int row = j % a.layout.page_size;
  if (row >= a.lists.rows[list + entry]) return -1;
  return static_cast<int64_t>(
      a.layout.RowOffset(a.lists.pages[list + entry], static_cast<int>(blockIdx.y), 0, row));
}

// Grid: (splits, KV heads, sequences), as the dense decode kernel: a block serves every query head
// of one KV head over one split of that head's list (each entry counted as page_size keys, rows
// past a partial page's end masked). Threads work in teams of head_dim / 8, a team on one key with
// each thread on 8 channels; the team's dot products meet by shuffles.
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads) SparseDecodeSplitKernel(SparseArgs a) {
  constexpr int kTeam = kHeadDim / 8;
  constexpr int kTeams = kThreads / kTeam;
  static_assert(32 % kTeam == 0 && kTileKeys % kTeams == 0);
  __shared__ float scores[kMaxGroup][kTileKeys];  // scores, then probabilities, of one tile
  __shared__ float head_max[kMaxGroup];
  __shared__ float head_sum[kMaxGroup];
  __shared__ float head_alpha[kMaxGroup];
  __shared__ float team_out[kTeams][kMaxGroup][kHeadDim];

  const int split = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int seq = blockIdx.z;
  const int group = a.group;
  const int n_heads = group * gridDim.y;
  const size_t unit = static_cast<size_t>(seq) * gridDim.y + kv_head;
  const size_t list = unit * a.lists.capacity;
  const int begin = split * a.split_len;
  const int end = min(a.lists.counts[unit] * a.layout.page_size, begin + a.split_len);
  const int tid = threadIdx.x;
  const int team = tid / kTeam;
  const int part = tid % kTeam;
  const __nv_bfloat16* pages = a.pages;
  const size_t value_step = static_cast<size_t>(a.layout.page_size) * kHeadDim;

  float q[kMaxGroup][8];
  float acc[kMaxGroup][8];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) q[g][e] = acc[g][e] = 0.0f;
    if (g < group) {
      const int head = kv_head * group + g;
      device::Unpack8(device::Load8(a.q + static_cast<size_t>(seq) * a.q_row_stride +
                                    head * kHeadDim + part * 8),
                      q[g]);
    }
  }
  if (tid < kMaxGroup) {
    head_max[tid] = -INFINITY;
    head_sum[tid] = 0.0f;
  }
  __syncthreads();

  for (int key0 = begin; key0 < end; key0 += kTileKeys) {
    // Scores. Every team runs the same iterations so the shuffles see the whole warp.
    for (int j = team; j < kTileKeys; j += kTeams) {
      const int key = key0 + j;
      float dot[kMaxGroup] = {};
      const int64_t at = key < end ? KeyAt(a, list, key) : -1;
      if (at >= 0) {
        float k[8];
        device::Unpack8(device::Load8(pages + at + part * 8), k);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
          for (int e = 0; e < 8; ++e) dot[g] += q[g][e] * k[e];
        }
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= group) break;
        const float s = device::GroupSum<kTeam>(dot[g]);
        if (part == 0) scores[g][j] = at >= 0 ? s * a.scale_log2 : -INFINITY;
      }
    }
    __syncthreads();

    // Online softmax per query head, a warp per head, each lane on two keys.
    const int warp = tid / 32;
    const int lane = tid % 32;
    for (int g = warp; g < group; g += kWarps) {
      const float s0 = scores[g][lane];
      const float s1 = scores[g][lane + 32];
      const float old_max = head_max[g];
      const float new_max = fmaxf(old_max, device::GroupMax(fmaxf(s0, s1)));
      const float base = new_max == -INFINITY ? 0.0f : new_max;  // no key yet: stay at zero
      const float p0 = exp2f(s0 - base);
      const float p1 = exp2f(s1 - base);
      scores[g][lane] = p0;
      scores[g][lane + 32] = p1;
      const float tile_sum = device::GroupSum(p0 + p1);
      __syncwarp();  // every lane has read head_max[g] before lane 0 replaces it
      if (lane == 0) {
        const float alpha = exp2f(old_max - base);
        head_alpha[g] = alpha;
        head_sum[g] = head_sum[g] * alpha + tile_sum;
        head_max[g] = new_max;
      }
    }
    __syncthreads();

    // acc = acc * alpha + P V over this thread's channels and its team's keys.
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      const float alpha = head_alpha[g];
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] *= alpha;
    }
    for (int j = team; j < kTileKeys && key0 + j < end; j += kTeams) {
      const int64_t at = KeyAt(a, list, key0 + j);
      if (at < 0) continue;  // masked: probability 0, and the row may hold anything
      float v[8];
      device::Unpack8(device::Load8(pages + at + value_step + part * 8), v);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= group) break;
        const float p = scores[g][j];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] += p * v[e];
      }
    }
    __syncthreads();  // the next tile overwrites scores
  }

  // Sum the teams' partial outputs, then normalise (one split) or hand them to the merge.
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= group) break;
#pragma unroll
    for (int e = 0; e < 8; ++e) team_out[team][g][part * 8 + e] = acc[g][e];
  }
  __syncthreads();
  for (int i = tid; i < group * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim;
    const int d = i % kHeadDim;
    float o = 0.0f;
    for (int t = 0; t < kTeams; ++t) o += team_out[t][g][d];
    const int head = kv_head * group + g;
    if (a.num_splits == 1) {
      const float sum = head_sum[g];
      device::Store(a.out + static_cast<size_t>(seq) * a.out_row_stride + head * kHeadDim + d,
                    sum > 0.0f ? o / sum : 0.0f);
    } else {
      const size_t at = (static_cast<size_t>(seq) * n_heads + head) * a.num_splits + split;
      a.partial_out[at * kHeadDim + d] = o;
      if (d == 0) {
        a.partial_stats[2 * at] = head_max[g];
        a.partial_stats[2 * at + 1] = head_sum[g];
      }
    }
  }
}

template <int kHeadDim>
cudaError_t Launch(const SparseDecodeAttentionParams& p, const SparseArgs& args,
                   cudaStream_t stream) {
  const dim3 grid(args.num_splits, p.layout.n_kv_heads, p.num_seqs);
  const cudaError_t err =
      device::LaunchKernel(SparseDecodeSplitKernel<kHeadDim>, grid, kThreads, 0, stream, args);
  if (err != cudaSuccess || args.num_splits == 1) return err;
  return LaunchDecodeMerge(args.partial_out, args.partial_stats, args.num_splits, p.n_heads,
                           p.num_seqs, kHeadDim, p.out, p.out_row_stride, stream);
}

}  // namespace

cudaError_t LaunchSparseDecodeAttention(const SparseDecodeAttentionParams& p,
                                        const DecodeSplitPlan& plan, float* workspace,
                                        cudaStream_t stream) {
  const PagedKvLayout& l = p.layout;
  const int64_t max_keys = int64_t{p.max_list_pages} * l.page_size;
  if (l.n_kv_heads <= 0 || l.n_kv_heads > 65535 || p.n_heads <= 0 ||
      p.n_heads % l.n_kv_heads != 0 || p.n_heads / l.n_kv_heads > kMaxGroup || l.page_size <= 0 ||
      (l.head_dim != 64 && l.head_dim != 128) || p.q_row_stride % 8 != 0 || p.num_seqs < 0 ||
      p.num_seqs > 65535 || p.max_list_pages < 0 || p.max_list_pages > p.lists.capacity ||
      plan.num_splits < 1 || plan.split_len <= 0 || plan.split_len % kTileKeys != 0 ||
      static_cast<int64_t>(plan.num_splits) * plan.split_len < max_keys ||
      (plan.num_splits > 1 && workspace == nullptr) || !device::Aligned16(p.q) ||
      !device::Aligned16(p.pages)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0) return cudaSuccess;
  const size_t partials = static_cast<size_t>(p.num_seqs) * p.n_heads * plan.num_splits;
  const SparseArgs args{
      .q = AsCuda(p.q),
      .q_row_stride = p.q_row_stride,
      .out = AsCuda(p.out),
      .out_row_stride = p.out_row_stride,
      .pages = AsCuda(p.pages),
      .layout = l,
      .lists = p.lists,
      .group = p.n_heads / l.n_kv_heads,
      .split_len = plan.split_len,
      .num_splits = plan.num_splits,
      .scale_log2 = p.scale * kLog2e,
      .partial_out = workspace,
      .partial_stats = workspace != nullptr ? workspace + partials * l.head_dim : nullptr};
  if (l.head_dim == 64) return Launch<64>(p, args, stream);
  return Launch<128>(p, args, stream);
}

}  // namespace kvserve::kernels
