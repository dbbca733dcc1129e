#include "kernels/token_top_k.h"

#include <cub/device/device_segmented_radix_sort.cuh>

#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

constexpr int kThreads = 256;
constexpr size_t kAlign = 256;

size_t AlignUp(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// The scratch, carved in this order: sorted scores, token indices in and sorted, each segment's
// begin and end (and the end of its top rows), the ascending top rows, then CUB's own storage.
struct ScratchLayout {
  float* sorted_scores;
  int32_t* indices;
  int32_t* sorted_indices;
  int32_t* begins;
  int32_t* ends;
  int32_t* top_ends;
  int32_t* ascending;
  void* cub;
  size_t cub_bytes;
  size_t total_bytes;
};

cudaError_t CubBytes(int items, int segments, size_t* bytes) {
  size_t pairs = 0;
  size_t keys = 0;
  cudaError_t err = cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, pairs, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), items, segments,
      static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr));
  if (err != cudaSuccess) return err;
  err = cub::DeviceSegmentedRadixSort::SortKeys(
      nullptr, keys, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), items,
      segments, static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr));
  *bytes = pairs > keys ? pairs : keys;
  return err;
}

cudaError_t Layout(void* base, int items, int segments, ScratchLayout* l) {
  size_t cub_bytes = 0;
  if (const cudaError_t err = CubBytes(items, segments, &cub_bytes); err != cudaSuccess) {
    return err;
  }
  auto* at = static_cast<char*>(base);
  size_t offset = 0;
  auto take = [&](size_t bytes) {
    char* p = at == nullptr ? nullptr : at + offset;
    offset += AlignUp(bytes);
    return p;
  };
  const size_t item_ints = sizeof(int32_t) * static_cast<size_t>(items);
  const size_t segment_ints = sizeof(int32_t) * static_cast<size_t>(segments);
  l->sorted_scores = reinterpret_cast<float*>(take(sizeof(float) * static_cast<size_t>(items)));
  l->indices = reinterpret_cast<int32_t*>(take(item_ints));
  l->sorted_indices = reinterpret_cast<int32_t*>(take(item_ints));
  l->begins = reinterpret_cast<int32_t*>(take(segment_ints));
  l->ends = reinterpret_cast<int32_t*>(take(segment_ints));
  l->top_ends = reinterpret_cast<int32_t*>(take(segment_ints));
  l->ascending = reinterpret_cast<int32_t*>(take(item_ints));
  l->cub = take(cub_bytes);
  l->cub_bytes = cub_bytes;
  l->total_bytes = offset;
  return cudaSuccess;
}

// Grid (token tiles of the longest cache, rows per token, sequences): writes token indices
// 0 .. prefix - 1 of each (sequence, row) segment, where the scores of row r of sequence s are
// [r][prefix] at cu_prefix[s] * rows_per_token, and the segment's bounds; with cu_keep also where
// its top rows (keep - window) end.
__global__ void __launch_bounds__(kThreads)
    SegmentsKernel(ScoredPrefixes b, int rows_per_token, const int32_t* cu_keep, ScratchLayout l) {
  const int seq = blockIdx.z;
  const int row = blockIdx.y;
  const int prefix = b.cu_prefix[seq + 1] - b.cu_prefix[seq];
  const int begin = b.cu_prefix[seq] * rows_per_token + row * prefix;
  for (int j = blockIdx.x * kThreads + threadIdx.x; j < prefix; j += gridDim.x * kThreads) {
    l.indices[begin + j] = j;
  }
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  const int segment = seq * rows_per_token + row;
  l.begins[segment] = begin;
  l.ends[segment] = begin + prefix;
  if (cu_keep != nullptr) {
    const int window = b.windows[seq];
    const int top = window == 0 ? 0 : cu_keep[seq + 1] - cu_keep[seq] - window;
    l.top_ends[segment] = begin + top;
  }
}

// Grid (row tiles of the longest cache, rows per token, sequences): row r of the keep rows of
// (sequence, row) is its r-th best token while r < keep - window, then the window in order; a
// window-0 sequence keeps rows 0 .. keep - 1.
__global__ void __launch_bounds__(kThreads)
    EmitRowsKernel(ScoredPrefixes b, int rows_per_token, const int32_t* cu_keep,
                   const int32_t* ranked, const int32_t* begins, int32_t* out) {
  const int seq = blockIdx.z;
  const int row = blockIdx.y;
  const int keep = cu_keep[seq + 1] - cu_keep[seq];
  const int window = b.windows[seq];
  const int n = b.kv_lens[seq];
  const int top = window == 0 ? 0 : keep - window;
  const int begin = begins[seq * rows_per_token + row];
  int32_t* dst =
      out + static_cast<size_t>(cu_keep[seq]) * rows_per_token + static_cast<size_t>(row) * keep;
  for (int r = blockIdx.x * kThreads + threadIdx.x; r < keep; r += gridDim.x * kThreads) {
    if (window == 0) {
      dst[r] = r;
    } else {
      dst[r] = r < top ? ranked[begin + r] : n - window + (r - top);
    }
  }
}

bool ValidPrefixes(const ScoredPrefixes& b) {
  return b.num_seqs >= 0 && b.num_seqs <= 65535 && b.max_kv_len >= 0 && b.total_prefix >= 0;
}

dim3 Grid(const ScoredPrefixes& b, int rows_per_token) {
  // At least one block per segment: its first thread writes the segment's bounds.
  const int tiles = (b.max_kv_len + kThreads - 1) / kThreads;
  return dim3(tiles > 0 ? tiles : 1, rows_per_token, b.num_seqs);
}

// The common part: segments, then the stable descending sort of every segment's scores.
cudaError_t RankTokens(const float* scores, const ScoredPrefixes& b, int rows_per_token,
                       const int32_t* cu_keep, bool with_top_ends, const ScratchLayout& l,
                       cudaStream_t stream) {
  const int items = b.total_prefix * rows_per_token;
  const int segments = b.num_seqs * rows_per_token;
  cudaError_t err =
      device::LaunchKernel(SegmentsKernel, Grid(b, rows_per_token), kThreads, 0, stream, b,
                           rows_per_token, with_top_ends ? cu_keep : nullptr, l);
  if (err != cudaSuccess) return err;
  size_t cub_bytes = l.cub_bytes;
  return cub::DeviceSegmentedRadixSort::SortPairsDescending(
      l.cub, cub_bytes, scores, l.sorted_scores, static_cast<const int32_t*>(l.indices),
      l.sorted_indices, items, segments, static_cast<const int32_t*>(l.begins),
      static_cast<const int32_t*>(l.ends), 0, static_cast<int>(sizeof(float) * 8), stream);
}

}  // namespace

cudaError_t SelectionScratchBytes(int max_items, int max_segments, size_t* bytes) {
  if (max_items < 0 || max_segments < 0 || bytes == nullptr) return cudaErrorInvalidValue;
  ScratchLayout l{};
  const cudaError_t err = Layout(nullptr, max_items, max_segments, &l);
  *bytes = l.total_bytes;
  return err;
}

cudaError_t LaunchSelectKvHeadRows(const KvHeadSelectParams& p, cudaStream_t stream) {
  const ScoredPrefixes& b = p.prefixes;
  if (!ValidPrefixes(b) || p.n_kv_heads <= 0 || p.n_kv_heads > 65535) {
    return cudaErrorInvalidValue;
  }
  if (b.num_seqs == 0) return cudaSuccess;
  ScratchLayout l{};
  cudaError_t err = Layout(p.scratch, b.total_prefix * p.n_kv_heads, b.num_seqs * p.n_kv_heads, &l);
  if (err != cudaSuccess) return err;
  if (l.total_bytes > p.scratch_bytes) return cudaErrorInvalidValue;
  err = RankTokens(p.kv_scores, b, p.n_kv_heads, p.cu_kept, false, l, stream);
  if (err != cudaSuccess) return err;
  if (b.max_kv_len == 0) return cudaSuccess;
  return device::LaunchKernel(EmitRowsKernel, Grid(b, p.n_kv_heads), kThreads, 0, stream, b,
                              p.n_kv_heads, p.cu_kept,
                              static_cast<const int32_t*>(l.sorted_indices),
                              static_cast<const int32_t*>(l.begins), p.kept_rows);
}

cudaError_t LaunchSelectPropagatedRows(const PropagationSelectParams& p, cudaStream_t stream) {
  const ScoredPrefixes& b = p.prefixes;
  if (!ValidPrefixes(b)) return cudaErrorInvalidValue;
  if (b.num_seqs == 0) return cudaSuccess;
  ScratchLayout l{};
  cudaError_t err = Layout(p.scratch, b.total_prefix, b.num_seqs, &l);
  if (err != cudaSuccess) return err;
  if (l.total_bytes > p.scratch_bytes) return cudaErrorInvalidValue;
  err = RankTokens(p.totals, b, 1, p.cu_keep, true, l, stream);
  if (err != cudaSuccess) return err;
  // Each sequence's top rows, now in rank order, back into token order.
  size_t cub_bytes = l.cub_bytes;
  err = cub::DeviceSegmentedRadixSort::SortKeys(
      l.cub, cub_bytes, static_cast<const int32_t*>(l.sorted_indices), l.ascending, b.total_prefix,
      b.num_seqs, static_cast<const int32_t*>(l.begins), static_cast<const int32_t*>(l.top_ends), 0,
      static_cast<int>(sizeof(int32_t) * 8), stream);
  if (err != cudaSuccess) return err;
  if (b.max_kv_len == 0) return cudaSuccess;
  return device::LaunchKernel(EmitRowsKernel, Grid(b, 1), kThreads, 0, stream, b, 1, p.cu_keep,
                              static_cast<const int32_t*>(l.ascending),
                              static_cast<const int32_t*>(l.begins), p.rows);
}

}  // namespace kvserve::kernels
