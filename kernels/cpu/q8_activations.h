#pragma once

#include <cstdint>

namespace kvserve::kernels::cpu {

// Activations quantized per 32 elements for the integer dot kernels, in two int8 planes:
// x ~= d * (256 * q + r), q rounding x to 255 levels and r the remainder to 1/256 of q's step.
// A weight row's dot is then two u8 x s8 integer dots combined as (dot_q << 8) + dot_r: 16-bit
// activation precision at the int8 instructions' speed. (One plane alone, as llama.cpp's Q8
// activations, moved SmolLM2's top-1 on 3% of positions against the fp32 path.)
// `sum` is d * sum(256 q + r), which folds the offsets of Q4_0 (-8), Q4_1 (+m) and the K-quants'
// mins into one multiply per block.
struct Q8Block {
  float d;
  float sum;
  int8_t q[32];
  int8_t r[32];
};
inline constexpr int kQ8BlockSize = 32;

// Quantizes `k` floats (a multiple of 32) into k / 32 blocks, rounding to nearest.
void QuantizeToQ8(const float* x, int64_t k, Q8Block* out);

}  // namespace kvserve::kernels::cpu
