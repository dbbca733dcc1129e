#pragma once

#include <cstdint>

#include "kernels/cpu/weight_format.h"

namespace kvserve::kernels::cpu {

// Whether QuantizeRow can produce `format` (F32, F16, BF16, Q8_0, Q4_0, Q4_1: the --weights-dtype
// targets; the K-quants' searched scales are left to offline tools).
bool CanQuantizeTo(WeightFormat format);

// Encodes `n` floats (a multiple of the block size) as `format` into RowBytesOf(format, n) bytes,
// with ggml's reference rounding so that a row re-encoded from its own decoding is stable.
void QuantizeRow(WeightFormat format, const float* src, uint8_t* dst, int64_t n);

}  // namespace kvserve::kernels::cpu
