#include "kernels/query_drift.h"

#include "kernels/ceil_div.h"
#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 128;

// Grid: sequences. A thread per query head takes its cosine in double, channel by channel with
// unfused products (reference::QueryCosine's arithmetic); a thread per KV head sums its group's
// cosines in order and flags it; then q_t replaces q_{t-1}.
__global__ void __launch_bounds__(kThreads) QueryDriftKernel(QueryDriftParams p) {
  __shared__ float cosines[kQueryDriftMaxHeads];
  const int seq = blockIdx.x;
  const int tid = threadIdx.x;
  const int d = p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  uint8_t* flags = p.flags + static_cast<size_t>(seq) * p.n_kv_heads;
  if (CeilDiv(p.kv_lens[seq], p.page_size) <= p.slots) {
    for (int h = tid; h < p.n_kv_heads; h += kThreads) flags[h] = 0;
    return;  // dense: nothing to check, nothing kept
  }
  const int row = StateRow(p.state_rows, seq);
  const __nv_bfloat16* q = AsCuda(p.q) + static_cast<size_t>(seq) * p.q_row_stride;
  __nv_bfloat16* last = AsCuda(p.last_q) + static_cast<size_t>(row) * p.n_heads * d;
  const bool has_last = p.has_last_q[row] != 0;
  for (int head = tid; head < p.n_heads && has_last; head += kThreads) {
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < d; ++i) {
      const double a = device::Load(q + head * d + i);
      const double b = device::Load(last + head * d + i);
      dot = __dadd_rn(dot, __dmul_rn(a, b));
      na = __dadd_rn(na, __dmul_rn(a, a));
      nb = __dadd_rn(nb, __dmul_rn(b, b));
    }
    cosines[head] = na > 0 && nb > 0 ? static_cast<float>(dot / sqrt(__dmul_rn(na, nb))) : 1.0f;
  }
  __syncthreads();
  for (int h = tid; h < p.n_kv_heads; h += kThreads) {
    if (!has_last) {
      flags[h] = 1;  // nothing speculated yet: every head selects now
      continue;
    }
    float cos = 0.0f;
    for (int g = h * group; g < (h + 1) * group; ++g) cos += cosines[g];
    const bool drifted = p.tau >= 1.0f || cos / group < p.tau;
    flags[h] = drifted ? 1 : 0;
    if (p.checks != nullptr) atomicAdd(p.checks + row, 1);
    if (p.corrections != nullptr && drifted) atomicAdd(p.corrections + row, 1);
  }
  __syncthreads();  // every read of q_{t-1} is done, every flag written
  if (tid == 0 && has_last) {
    bool any = false;
    for (int h = 0; h < p.n_kv_heads; ++h) any |= flags[h] != 0;
    if (p.checked_steps != nullptr) p.checked_steps[row] += 1;
    if (p.corrected_steps != nullptr && any) p.corrected_steps[row] += 1;
  }
  for (int e = tid; e < p.n_heads * d; e += kThreads) last[e] = q[e];
  if (tid == 0) p.has_last_q[row] = 1;
}

}  // namespace

cudaError_t LaunchQueryDrift(const QueryDriftParams& p, cudaStream_t stream) {
  if (p.num_seqs < 0 || p.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % p.n_kv_heads != 0 ||
      p.n_heads > kQueryDriftMaxHeads || p.head_dim <= 0 || p.page_size <= 0 || p.slots <= 0) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0) return cudaSuccess;
  return device::LaunchKernel(QueryDriftKernel, p.num_seqs, kThreads, 0, stream, p);
}

}  // namespace kvserve::kernels
