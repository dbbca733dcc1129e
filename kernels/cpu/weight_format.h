#pragma once

#include <cstddef>
#include <cstdint>

namespace kvserve::kernels::cpu {

// Storage formats of a weight matrix the CPU kernels compute on directly. Rows are packed
// independently, each as ggml lays the type out (little-endian blocks), so a row range of a
// matrix is a contiguous byte range.
enum class WeightFormat : int {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ4_K,
  kQ5_K,
  kQ6_K,
};
inline constexpr int kNumWeightFormats = 9;

// `block_size` elements are packed into `block_bytes` bytes.
struct FormatLayout {
  int block_size;
  int block_bytes;
};
FormatLayout LayoutOf(WeightFormat format);

// "F32", "Q4_1", ... as ggml names them.
const char* FormatName(WeightFormat format);

// Whether rows are dotted against int8-quantized activations (every block-quantized format) or
// against the fp32 activations themselves (F32, F16, BF16).
bool UsesQ8Activations(WeightFormat format);

// Bytes of one row of `cols` elements; `cols` must be a multiple of the block size.
inline size_t RowBytesOf(WeightFormat format, int64_t cols) {
  const FormatLayout l = LayoutOf(format);
  return static_cast<size_t>(cols / l.block_size) * static_cast<size_t>(l.block_bytes);
}

}  // namespace kvserve::kernels::cpu
