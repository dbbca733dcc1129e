#pragma once

namespace kvserve::kernels::device {

// Max and sum across the `width` lanes of an aligned lane group (width a power of two <= 32).
template <int width = 32>
__device__ inline float GroupMax(float v) {
#pragma unroll
  for (int offset = width / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

template <int width = 32>
__device__ inline float GroupSum(float v) {
#pragma unroll
  for (int offset = width / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

}  // namespace kvserve::kernels::device
