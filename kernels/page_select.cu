#include "kernels/page_select.h"

#include <cmath>

#include "kernels/ceil_div.h"
#include "kernels/device/bf16_device.cuh"
#include "kernels/device/dynamic_shared.cuh"
#include "kernels/device/launch.cuh"
#include "kernels/host_device.h"
#include "kernels/page_bound_lanes.h"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 256;
constexpr int kUnitThreads = 128;
constexpr size_t kDefaultShared = 48 * 1024;

KVSERVE_HOST_DEVICE size_t Align16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// One thread per unit: ResidencyMap::Extend on the unit's arrays, then the slots now holding a
// page the maps did not know before, in slot order.
__global__ void __launch_bounds__(kUnitThreads) ExtendResidencyKernel(ExtendResidencyParams p) {
  const int unit = blockIdx.x * kUnitThreads + threadIdx.x;
  if (unit >= p.num_seqs * p.n_kv_heads) return;
  const int seq = unit / p.n_kv_heads;
  const TieredLayout& lay = p.layout;
  const ResidencyState& r = p.residency;
  const size_t state = r.Unit(seq, unit % p.n_kv_heads, p.n_kv_heads);
  const int n_pages = CeilDiv(p.kv_lens[seq], p.page_size);
  p.placements.counts[unit] = 0;
  if (n_pages <= lay.slots) return;  // dense
  int32_t* slot_page = r.slot_page + state * lay.slots;
  int32_t* page_slot = r.page_slot + state * r.max_pages;
  const int before = r.n_pages[state];
  int cursor = r.next_window[state];
  const int first_window_slot = lay.sink + lay.retrieved();
  for (int32_t page = before; page < n_pages; ++page) {
    page_slot[page] = -1;
    int32_t slot;
    if (page < lay.sink) {
      slot = page;
    } else {
      slot = first_window_slot + cursor;
      cursor = (cursor + 1) % lay.window;
      if (const int32_t old = slot_page[slot]; old >= 0) page_slot[old] = -1;
    }
    slot_page[slot] = page;
    page_slot[page] = slot;
  }
  r.n_pages[state] = n_pages;
  r.next_window[state] = cursor;
  int count = 0;
  for (int32_t slot = 0; slot < lay.slots; ++slot) {
    if (slot_page[slot] < before) continue;
    const size_t at = static_cast<size_t>(unit) * p.placements.capacity + count++;
    p.placements.pages[at] = slot_page[slot];
    p.placements.slots[at] = slot;
  }
  p.placements.counts[unit] = count;
}

// In-place exclusive prefix sum of values[0, n) by the whole block; returns the total to every
// thread. `scratch` holds kThreads ints.
__device__ int BlockExclusiveScan(int32_t* values, int n, int32_t* scratch) {
  const int tid = threadIdx.x;
  int carry = 0;
  for (int base = 0; base < n; base += kThreads) {
    const int v = base + tid < n ? values[base + tid] : 0;
    scratch[tid] = v;
    __syncthreads();
    for (int offset = 1; offset < kThreads; offset *= 2) {
      const int add = tid >= offset ? scratch[tid - offset] : 0;
      __syncthreads();
      scratch[tid] += add;
      __syncthreads();
    }
    if (base + tid < n) values[base + tid] = carry + scratch[tid] - v;
    carry += scratch[kThreads - 1];
    __syncthreads();  // the next tile overwrites scratch
  }
  return carry;
}

struct SelectShared {
  float* q;             // [group][head_dim]
  float* scores;        // [max_candidates]
  float* bounds;        // [max_candidates]
  int32_t* chosen;      // [max_candidates]: selected, then new-page flags, then their ranks
  int32_t* fresh;       // [max_candidates]: new-page flags
  int32_t* freed;       // [retrieved]: freed retrieved slots, then their ranks
  int32_t* free_flags;  // [retrieved]
  int32_t* free_list;   // [retrieved]: the freed slots in slot order
  int32_t* scratch;     // [kThreads]
  float* reduce;        // [kThreads]
  size_t bytes;
};

// Host (sizes) and device (the block's pointers) carve the same way.
KVSERVE_HOST_DEVICE SelectShared Carve(unsigned char* base, int max_candidates, int group,
                                       int head_dim, int retrieved) {
  SelectShared s{};
  size_t at = 0;
  auto take = [&](size_t bytes) {
    unsigned char* p = base == nullptr ? nullptr : base + at;
    at += Align16(bytes);
    return p;
  };
  const size_t c = static_cast<size_t>(max_candidates > 0 ? max_candidates : 1);
  const size_t r = static_cast<size_t>(retrieved > 0 ? retrieved : 1);
  s.q = reinterpret_cast<float*>(take(sizeof(float) * group * head_dim));
  s.scores = reinterpret_cast<float*>(take(sizeof(float) * c));
  s.bounds = reinterpret_cast<float*>(take(sizeof(float) * c));
  s.chosen = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * c));
  s.fresh = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * c));
  s.freed = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * r));
  s.free_flags = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * r));
  s.free_list = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * r));
  s.scratch = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * kThreads));
  s.reduce = reinterpret_cast<float*>(take(sizeof(float) * kThreads));
  s.bytes = at;
  return s;
}

// Grid: units. See LaunchSelectPages.
__global__ void __launch_bounds__(kThreads) SelectPagesKernel(SelectPagesParams p, int group) {
  __shared__ double softmax_sum;
  __shared__ float softmax_max;
  const PageDigestTable& dg = p.digests;
  const TieredLayout& lay = p.layout;
  const int unit = blockIdx.x;
  const int seq = unit / dg.n_kv_heads;
  const int head = unit % dg.n_kv_heads;
  const int tid = threadIdx.x;
  const int d = dg.head_dim;
  const int n_pages = CeilDiv(p.kv_lens[seq], p.page_size);
  const bool chosen = p.mask == nullptr || ((p.mask[unit] != 0) != p.invert);
  if (!chosen || n_pages <= lay.slots) {
    if (tid == 0) p.recalls.counts[unit] = 0;
    return;
  }
  const SelectShared s =
      Carve(device::DynamicShared(), p.residency.max_pages, group, d, lay.retrieved());
  const int sink = lay.sink;
  const int window_start = max(sink, n_pages - lay.window);
  const int n = window_start - sink;  // candidates: pages sink .. window_start - 1
  const int k = lay.retrieved();

  const int q_row = p.q_rows != nullptr ? p.q_rows[seq] : seq;
  const size_t state = p.residency.Unit(seq, head, dg.n_kv_heads);
  const size_t first_row =
      static_cast<size_t>(StateRow(p.residency.state_rows, seq)) * dg.row_pages;
  const __nv_bfloat16* q = AsCuda(p.q) + static_cast<size_t>(q_row) * p.q_row_stride +
                           static_cast<size_t>(head) * group * d;
  for (int e = tid; e < group * d; e += kThreads) s.q[e] = device::Load(q + e);
  for (int i = tid; i < n; i += kThreads) s.scores[i] = 0.0f;
  __syncthreads();

  // Scores: each query head's bounds, aggregated as ScorePageCandidates does.
  for (int g = 0; g < group; ++g) {
    const float* qg = s.q + g * d;
    float local_max = -INFINITY;
    for (int i = tid; i < n; i += kThreads) {
      const float* hi = dg.data + dg.HiOffset(static_cast<int32_t>(first_row + sink + i), head);
      const float* lo = hi + d;
      float lanes[kPageBoundLanes] = {};  // the CPU twin's order (page_bound_lanes.h)
      for (int c = 0; c < d; c += kPageBoundLanes) {
#pragma unroll
        for (int l = 0; l < kPageBoundLanes; ++l) {
          if (c + l < d)
            lanes[l] += fmaxf(__fmul_rn(qg[c + l], hi[c + l]), __fmul_rn(qg[c + l], lo[c + l]));
        }
      }
      const float bound = SumPageBoundLanes(lanes);
      s.bounds[i] = bound;
      local_max = fmaxf(local_max, bound);
    }
    if (p.aggregation == PageScoreAggregation::kMean) {
      for (int i = tid; i < n; i += kThreads) s.scores[i] += s.bounds[i] / group;
      continue;  // each thread reads only its own entries
    }
    if (p.aggregation == PageScoreAggregation::kMax) {
      for (int i = tid; i < n; i += kThreads) {
        s.scores[i] = g == 0 ? s.bounds[i] : fmaxf(s.scores[i], s.bounds[i]);
      }
      continue;
    }
    s.reduce[tid] = local_max;
    __syncthreads();
    if (tid == 0) {
      float m = -INFINITY;
      for (int t = 0; t < kThreads; ++t) m = fmaxf(m, s.reduce[t]);
      softmax_max = m;
    }
    __syncthreads();
    // Softmax of q·k / sqrt(d), as attention: unscaled, whole sets of pages underflow to 0.
    const float scale = 1.0f / sqrtf(static_cast<float>(d));
    for (int i = tid; i < n; i += kThreads) {
      s.bounds[i] = expf((s.bounds[i] - softmax_max) * scale);
    }
    __syncthreads();
    if (tid == 0) {
      // In candidate order, in double, as the CPU policy sums.
      double sum = 0.0;
      for (int i = 0; i < n; ++i) sum += s.bounds[i];
      softmax_sum = sum;
    }
    __syncthreads();
    for (int i = tid; i < n; i += kThreads) {
      s.scores[i] += static_cast<float>(s.bounds[i] / softmax_sum) / group;
    }
    __syncthreads();  // softmax_max and softmax_sum are reused by the next head
  }
  __syncthreads();

  // Top-k by rank: better score, or an equal one on an earlier page.
  for (int i = tid; i < n; i += kThreads) {
    const float si = s.scores[i];
    int rank = 0;
    for (int j = 0; j < n && rank < k; ++j) {
      const float sj = s.scores[j];
      rank += (sj > si || (sj == si && j < i)) ? 1 : 0;
    }
    s.chosen[i] = rank < k ? 1 : 0;
  }
  __syncthreads();

  // Residency (ResidencyMap::Select): retrieved slots whose page fell out are freed.
  int32_t* slot_page = p.residency.slot_page + state * lay.slots;
  int32_t* page_slot = p.residency.page_slot + state * p.residency.max_pages;
  for (int r = tid; r < k; r += kThreads) {
    const int32_t page = slot_page[sink + r];
    const bool keep = page >= sink && page < window_start && s.chosen[page - sink] != 0;
    s.freed[r] = keep ? 0 : 1;
  }
  __syncthreads();
  for (int r = tid; r < k; r += kThreads) {
    if (s.freed[r] == 0) continue;
    const int32_t page = slot_page[sink + r];
    if (page >= 0) page_slot[page] = -1;
    slot_page[sink + r] = -1;
  }
  // Selected pages not resident are new (freeing touched unselected pages only).
  for (int i = tid; i < n; i += kThreads) {
    s.fresh[i] = s.chosen[i] != 0 && page_slot[sink + i] < 0 ? 1 : 0;
    s.chosen[i] = s.fresh[i];
  }
  for (int r = tid; r < k; r += kThreads) s.free_flags[r] = s.freed[r];
  __syncthreads();
  BlockExclusiveScan(s.freed, k, s.scratch);
  const int total = BlockExclusiveScan(s.chosen, n, s.scratch);
  for (int r = tid; r < k; r += kThreads) {
    if (s.free_flags[r] != 0) s.free_list[s.freed[r]] = sink + r;
  }
  __syncthreads();
  // The j-th new page, in page order, takes the j-th freed slot, in slot order.
  const size_t list = static_cast<size_t>(unit) * p.recalls.capacity;
  for (int i = tid; i < n; i += kThreads) {
    if (s.fresh[i] == 0) continue;
    const int j = s.chosen[i];
    const int32_t page = sink + i;
    const int32_t slot = s.free_list[j];
    slot_page[slot] = page;
    page_slot[page] = slot;
    p.recalls.pages[list + j] = page;
    p.recalls.slots[list + j] = slot;
  }
  if (tid == 0) p.recalls.counts[unit] = total;
}

}  // namespace

cudaError_t LaunchExtendResidency(const ExtendResidencyParams& p, cudaStream_t stream) {
  const TieredLayout& l = p.layout;
  if (p.num_seqs < 0 || p.n_kv_heads <= 0 || p.page_size <= 0 || l.slots <= 0 || l.sink < 0 ||
      l.window < 1 || l.retrieved() < 0 || p.placements.capacity < l.slots) {
    return cudaErrorInvalidValue;
  }
  const int units = p.num_seqs * p.n_kv_heads;
  if (units == 0) return cudaSuccess;
  return device::LaunchKernel(ExtendResidencyKernel, CeilDiv(units, kUnitThreads), kUnitThreads, 0,
                              stream, p);
}

size_t SelectPagesSharedBytes(int max_candidates, int group, int head_dim, int retrieved) {
  return Carve(nullptr, max_candidates, group, head_dim, retrieved).bytes;
}

cudaError_t LaunchSelectPages(const SelectPagesParams& p, cudaStream_t stream) {
  const TieredLayout& l = p.layout;
  const PageDigestTable& dg = p.digests;
  if (p.num_seqs < 0 || dg.n_kv_heads <= 0 || p.n_heads <= 0 || p.n_heads % dg.n_kv_heads != 0 ||
      dg.head_dim <= 0 || p.page_size <= 0 || l.slots <= 0 || l.sink < 0 || l.window < 1 ||
      l.retrieved() < 0 || p.recalls.capacity < l.retrieved() || p.residency.max_pages < 0 ||
      dg.row_pages < 0) {
    return cudaErrorInvalidValue;
  }
  const int units = p.num_seqs * dg.n_kv_heads;
  if (units == 0) return cudaSuccess;
  const int group = p.n_heads / dg.n_kv_heads;
  const size_t bytes =
      SelectPagesSharedBytes(p.residency.max_pages, group, dg.head_dim, l.retrieved());
  if (bytes > kDefaultShared) {
    const cudaError_t err = cudaFuncSetAttribute(
        SelectPagesKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
  }
  return device::LaunchKernel(SelectPagesKernel, units, kThreads, bytes, stream, p, group);
}

}  // namespace kvserve::kernels
