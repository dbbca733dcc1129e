#pragma once

// cub::DeviceSegmentedRadixSort as its contract reads (CUB 3.0, device_segmented_radix_sort.cuh),
// for the overloads the kernels use: a null d_temp_storage only reports the bytes it needs; a
// smaller allocation is cudaErrorInvalidValue; every range must be device memory and the outputs
// may not overlap the inputs or the offsets; segments with end <= begin are skipped and nothing
// outside a segment is touched. Sorting is stable and float -0.0 equals +0.0, as DeviceRadixSort
// documents. It runs on the host once its stream's earlier work has run (a legal order of a
// stream's work: everything after it sees the result).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cuda_runtime_api.h"

namespace kvserve::cuda_emulator {

// Whether [ptr, ptr + bytes) lies inside one live device allocation (bytes 0: ptr may be
// anything).
bool DeviceRange(const void* ptr, size_t bytes);
// Prints why a CUB call is refused and returns cudaErrorInvalidValue, also as the last error.
cudaError_t CubMisuse(const char* what);
// Runs what `stream` has queued (stream_scheduler.h).
cudaError_t DrainStream(cudaStream_t stream);

// The unsigned key radix sort orders, so that ascending order of it is ascending order of keys:
// floats with the sign bit flipped (all bits for negatives), -0.0 folded onto +0.0.
template <typename KeyT>
uint64_t RadixOrder(KeyT key) {
  static_assert(sizeof(KeyT) == 4, "the emulator sorts 32-bit keys");
  uint32_t bits;
  std::memcpy(&bits, &key, sizeof bits);
  if constexpr (std::is_floating_point_v<KeyT>) {
    if (bits == 0x80000000u) bits = 0;
    return (bits & 0x80000000u) != 0 ? ~bits & 0xffffffffu : bits | 0x80000000u;
  } else if constexpr (std::is_signed_v<KeyT>) {
    return bits ^ 0x80000000u;
  } else {
    return bits;
  }
}

inline bool Overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto* pa = static_cast<const char*>(a);
  const auto* pb = static_cast<const char*>(b);
  return a_bytes > 0 && b_bytes > 0 && pa < pb + b_bytes && pb < pa + a_bytes;
}

// The shared body of the pair and key sorts (values may be null for keys only).
template <typename KeyT, typename ValueT>
cudaError_t SegmentedSort(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* keys_in,
                          KeyT* keys_out, const ValueT* values_in, ValueT* values_out,
                          int num_items, int num_segments, const int* begin_offsets,
                          const int* end_offsets, int begin_bit, int end_bit, bool pairs,
                          bool descending, cudaStream_t stream) {
  // What CUB asks for in this form: room for alternate keys and values (~2N), and a little more.
  const size_t value_bytes = pairs ? sizeof(ValueT) : 0;
  const size_t needed = static_cast<size_t>(std::max(num_items, 0)) * (sizeof(KeyT) + value_bytes) +
                        static_cast<size_t>(std::max(num_segments, 0)) * sizeof(int) + 1024;
  if (d_temp_storage == nullptr) {
    temp_storage_bytes = needed;
    return cudaSuccess;
  }
  if (temp_storage_bytes < needed) return CubMisuse("temporary storage smaller than asked for");
  if (num_items < 0 || num_segments < 0) return CubMisuse("negative item or segment count");
  if (pairs && (values_in == nullptr || values_out == nullptr)) {
    return CubMisuse("SortPairs without values");
  }
  if (begin_bit != 0 || end_bit != static_cast<int>(sizeof(KeyT) * 8)) {
    return CubMisuse("the emulator sorts all key bits only");
  }
  const size_t items = static_cast<size_t>(num_items);
  const size_t key_bytes = items * sizeof(KeyT);
  const size_t val_bytes = items * value_bytes;
  const size_t offset_bytes = static_cast<size_t>(num_segments) * sizeof(int);
  if (!DeviceRange(d_temp_storage, temp_storage_bytes) || !DeviceRange(keys_in, key_bytes) ||
      !DeviceRange(keys_out, key_bytes) || !DeviceRange(begin_offsets, offset_bytes) ||
      !DeviceRange(end_offsets, offset_bytes) ||
      (pairs && (!DeviceRange(values_in, val_bytes) || !DeviceRange(values_out, val_bytes)))) {
    return CubMisuse("a range is not device memory");
  }
  const void* outs[] = {keys_out, values_out};
  const size_t out_bytes[] = {key_bytes, val_bytes};
  const void* ins[] = {keys_in, values_in, begin_offsets, end_offsets, d_temp_storage};
  const size_t in_bytes[] = {key_bytes, val_bytes, offset_bytes, offset_bytes, temp_storage_bytes};
  for (int o = 0; o < 2; ++o) {
    for (int i = 0; i < 5; ++i) {
      if (Overlap(outs[o], out_bytes[o], ins[i], in_bytes[i])) {
        return CubMisuse("an output overlaps an input, the offsets or the temporary storage");
      }
    }
  }
  if (Overlap(keys_out, key_bytes, values_out, val_bytes)) return CubMisuse("outputs overlap");
  if (const cudaError_t err = DrainStream(stream); err != cudaSuccess) return err;
  std::vector<int> order;
  for (int s = 0; s < num_segments; ++s) {
    const int begin = begin_offsets[s];
    const int end = end_offsets[s];
    if (end <= begin) continue;
    if (begin < 0 || end > num_items) return CubMisuse("a segment lies outside the items");
    order.resize(end - begin);
    for (int i = begin; i < end; ++i) order[i - begin] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      const uint64_t ka = RadixOrder(keys_in[a]);
      const uint64_t kb = RadixOrder(keys_in[b]);
      return descending ? ka > kb : ka < kb;
    });
    for (int i = begin; i < end; ++i) {
      keys_out[i] = keys_in[order[i - begin]];
      if (pairs) values_out[i] = values_in[order[i - begin]];
    }
  }
  return cudaSuccess;
}

}  // namespace kvserve::cuda_emulator

namespace cub {

struct DeviceSegmentedRadixSort {
  template <typename KeyT, typename ValueT>
  static cudaError_t SortPairsDescending(void* d_temp_storage, size_t& temp_storage_bytes,
                                         const KeyT* d_keys_in, KeyT* d_keys_out,
                                         const ValueT* d_values_in, ValueT* d_values_out,
                                         int num_items, int num_segments,
                                         const int* d_begin_offsets, const int* d_end_offsets,
                                         int begin_bit = 0, int end_bit = sizeof(KeyT) * 8,
                                         cudaStream_t stream = 0) {
    return ::kvserve::cuda_emulator::SegmentedSort(d_temp_storage, temp_storage_bytes, d_keys_in,
                                                   d_keys_out, d_values_in, d_values_out, num_items,
                                                   num_segments, d_begin_offsets, d_end_offsets,
                                                   begin_bit, end_bit, true, true, stream);
  }

  template <typename KeyT>
  static cudaError_t SortKeys(void* d_temp_storage, size_t& temp_storage_bytes,
                              const KeyT* d_keys_in, KeyT* d_keys_out, int num_items,
                              int num_segments, const int* d_begin_offsets,
                              const int* d_end_offsets, int begin_bit = 0,
                              int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = 0) {
    return ::kvserve::cuda_emulator::SegmentedSort<KeyT, int>(
        d_temp_storage, temp_storage_bytes, d_keys_in, d_keys_out, nullptr, nullptr, num_items,
        num_segments, d_begin_offsets, d_end_offsets, begin_bit, end_bit, false, false, stream);
  }
};

}  // namespace cub
