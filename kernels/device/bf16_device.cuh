#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::kernels::device {

static_assert(sizeof(Bf16) == sizeof(__nv_bfloat16));

// The API's storage type and CUDA's share their bits; kernels work on CUDA's.
__host__ __device__ inline const __nv_bfloat16* AsCuda(const Bf16* p) {
  return reinterpret_cast<const __nv_bfloat16*>(p);
}
__host__ __device__ inline __nv_bfloat16* AsCuda(Bf16* p) {
  return reinterpret_cast<__nv_bfloat16*>(p);
}

__device__ inline float Load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ inline float Load(const float* p) { return *p; }
__device__ inline void Store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ inline void Store(float* p, float v) { *p = v; }

// Eight bf16 moved as one 16-byte access: the unit of the KV and attention copies.
__device__ inline uint4 Load8(const __nv_bfloat16* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ inline void Store8(__nv_bfloat16* p, uint4 v) { *reinterpret_cast<uint4*>(p) = v; }

// The eight floats of a 16-byte bf16 vector.
__device__ inline void Unpack8(uint4 v, float* out) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(words[i] << 16);
    out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace kvserve::kernels::device
