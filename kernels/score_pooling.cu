#include "kernels/score_pooling.h"

#include <cmath>

#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

constexpr int kThreads = 256;

// Grid (token tiles of the longest prefix, sequences). Thread j pools token j of every query head
// (a window of adds or maxes, left to right) and adds the heads of each group from zero, then the
// groups from zero: the twin's order (PoolScores, GroupSumScores, SumOverKvHeads).
__global__ void __launch_bounds__(kThreads) ScorePoolingKernel(ScorePoolingParams p) {
  const int seq = blockIdx.y;
  if (p.prefixes.windows[seq] == 0) return;
  const int begin = p.prefixes.cu_prefix[seq];
  const int len = p.prefixes.cu_prefix[seq + 1] - begin;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  if (j >= len) return;
  const int group = p.n_heads / p.n_kv_heads;
  const int half = p.kernel / 2;
  const int lo = max(0, j - half);
  const int hi = min(len - 1, j + half);
  const float* heads = p.head_scores + static_cast<size_t>(begin) * p.n_heads;
  float* kv = p.kv_scores + static_cast<size_t>(begin) * p.n_kv_heads;
  float total = 0.0f;
  for (int g = 0; g < p.n_kv_heads; ++g) {
    float sum = 0.0f;
    for (int h = g * group; h < (g + 1) * group; ++h) {
      const float* row = heads + static_cast<size_t>(h) * len;
      float pooled;
      if (p.pooling == ScorePooling::kMax) {
        pooled = -INFINITY;
        for (int t = lo; t <= hi; ++t) pooled = fmaxf(pooled, row[t]);
      } else {
        float window_sum = 0.0f;
        for (int t = lo; t <= hi; ++t) window_sum += row[t];
        pooled = window_sum / static_cast<float>(p.kernel);  // count_include_pad
      }
      sum += pooled;
    }
    kv[static_cast<size_t>(g) * len + j] = sum;
    total += sum;
  }
  if (p.totals != nullptr) p.totals[begin + j] = total;
}

}  // namespace

cudaError_t LaunchScorePooling(const ScorePoolingParams& p, cudaStream_t stream) {
  const ScoredPrefixes& b = p.prefixes;
  if (p.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % p.n_kv_heads != 0 || p.kernel < 1 ||
      p.kernel % 2 == 0 || b.num_seqs < 0 || b.max_kv_len < 0 ||
      (p.pooling != ScorePooling::kMax && p.pooling != ScorePooling::kAvg)) {
    return cudaErrorInvalidValue;
  }
  if (b.num_seqs == 0 || b.max_kv_len == 0) return cudaSuccess;
  // A prefix is never longer than its cache.
  const dim3 grid((b.max_kv_len + kThreads - 1) / kThreads, b.num_seqs);
  return device::LaunchKernel(ScorePoolingKernel, grid, kThreads, 0, stream, p);
}

}  // namespace kvserve::kernels
