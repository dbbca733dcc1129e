#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/weight_format.h"

namespace kvserve::kernels::cpu {

// Decodes `n` elements (a multiple of the format's block size) of `format` from `src` into fp32:
// embedding rows, prefill's fp32 panels, and the loader's dequantization of K-quants.
void DequantizeRow(WeightFormat format, const uint8_t* src, float* dst, int64_t n);

// Rows [r0, r1) of a [rows][cols] matrix of `format` into dst ([r1 - r0][cols]).
void DequantizeRows(WeightFormat format, const uint8_t* matrix, int64_t cols, int64_t r0,
                    int64_t r1, float* dst);

}  // namespace kvserve::kernels::cpu
