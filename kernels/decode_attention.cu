#include "kernels/decode_attention.h"

#include <cmath>

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

struct DecodeArgs {
  const __nv_bfloat16* q;
  int q_row_stride;
  __nv_bfloat16* out;
  int out_row_stride;
  const int32_t* kv_lens;
  PagedKvCache cache;
  int group;
  int split_len;
  int num_splits;
  float scale_log2;
  float* partial_out;    // [seq][head][split][head_dim], unnormalised
  float* partial_stats;  // [seq][head][split][2]: running max (log2 domain) and sum
};

// Grid: (splits, KV heads, sequences). A block serves every query head of one KV head over one
// split, so each K/V row is read once per group. Threads work in teams of head_dim / 8, a team on
// one key with each thread on 8 channels; the team's dot products meet by shuffles.
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads) DecodeSplitKernel(DecodeArgs a) {
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
  const int begin = split * a.split_len;
  const int end = min(a.kv_lens[seq], begin + a.split_len);
  const int tid = threadIdx.x;
  const int team = tid / kTeam;
  const int part = tid % kTeam;
  const __nv_bfloat16* pages = AsCuda(a.cache.pages);

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
      if (key < end) {
        float k[8];
        device::Unpack8(device::Load8(pages + a.cache.KeyOffset(seq, key, kv_head) + part * 8), k);
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
        if (part == 0) scores[g][j] = key < end ? s * a.scale_log2 : -INFINITY;
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
      float v[8];
      device::Unpack8(device::Load8(pages + a.cache.ValueOffset(seq, key0 + j, kv_head) + part * 8),
                      v);
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

// Grid: (query heads, sequences), one thread per channel: rescales each split to the common max.
__global__ void DecodeMergeKernel(const float* partial_out, const float* partial_stats,
                                  int num_splits, __nv_bfloat16* out, int out_row_stride) {
  const int head = blockIdx.x;
  const int seq = blockIdx.y;
  const int head_dim = blockDim.x;
  const int d = threadIdx.x;
  const size_t first = (static_cast<size_t>(seq) * gridDim.x + head) * num_splits;
  float max = -INFINITY;
  for (int s = 0; s < num_splits; ++s) max = fmaxf(max, partial_stats[2 * (first + s)]);
  const float base = max == -INFINITY ? 0.0f : max;
  float numerator = 0.0f;
  float denominator = 0.0f;
  for (int s = 0; s < num_splits; ++s) {
    const float weight = exp2f(partial_stats[2 * (first + s)] - base);  // 0 for an empty split
    numerator += weight * partial_out[(first + s) * head_dim + d];
    denominator += weight * partial_stats[2 * (first + s) + 1];
  }
  device::Store(out + static_cast<size_t>(seq) * out_row_stride + head * head_dim + d,
                denominator > 0.0f ? numerator / denominator : 0.0f);
}

template <int kHeadDim>
cudaError_t Launch(const DecodeAttentionParams& p, const DecodeArgs& args, cudaStream_t stream) {
  const dim3 grid(args.num_splits, p.cache.layout.n_kv_heads, p.num_seqs);
  const cudaError_t err =
      device::LaunchKernel(DecodeSplitKernel<kHeadDim>, grid, kThreads, 0, stream, args);
  if (err != cudaSuccess || args.num_splits == 1) return err;
  return LaunchDecodeMerge(args.partial_out, args.partial_stats, args.num_splits, p.n_heads,
                           p.num_seqs, kHeadDim, p.out, p.out_row_stride, stream);
}

}  // namespace

cudaError_t LaunchDecodeMerge(const float* partial_out, const float* partial_stats, int num_splits,
                              int n_heads, int num_seqs, int head_dim, Bf16* out,
                              int out_row_stride, cudaStream_t stream) {
  return device::LaunchKernel(DecodeMergeKernel, dim3(n_heads, num_seqs), head_dim, 0, stream,
                              partial_out, partial_stats, num_splits, AsCuda(out), out_row_stride);
}

cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& p, const DecodeSplitPlan& plan,
                                  float* workspace, cudaStream_t stream) {
  const PagedKvLayout& l = p.cache.layout;
  if (l.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % l.n_kv_heads != 0 ||
      p.n_heads / l.n_kv_heads > kMaxGroup || l.page_size <= 0 ||
      (l.head_dim != 64 && l.head_dim != 128) || p.q_row_stride % 8 != 0 || p.num_seqs < 0 ||
      plan.num_splits < 1 || plan.split_len <= 0 || plan.split_len % kTileKeys != 0 ||
      static_cast<int64_t>(plan.num_splits) * plan.split_len < p.max_kv_len ||
      (plan.num_splits > 1 && workspace == nullptr) || !device::Aligned16(p.q) ||
      !device::Aligned16(p.cache.pages)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0) return cudaSuccess;
  const size_t partials = static_cast<size_t>(p.num_seqs) * p.n_heads * plan.num_splits;
  const DecodeArgs args{
      .q = AsCuda(p.q),
      .q_row_stride = p.q_row_stride,
      .out = AsCuda(p.out),
      .out_row_stride = p.out_row_stride,
      .kv_lens = p.kv_lens,
      .cache = p.cache,
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
