#pragma once

#include "kernels/host_device.h"

namespace kvserve::kernels {

// A page's upper bound Σ_c max(q_c·hi_c, q_c·lo_c) sums channel c into lane c % kPageBoundLanes,
// then the lanes as SumPageBoundLanes does: one AVX2 register on the CPU, and the device kernel
// adds in the same order, so the two bounds (and selections) are equal to the bit.
inline constexpr int kPageBoundLanes = 8;

KVSERVE_HOST_DEVICE inline float SumPageBoundLanes(const float* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

}  // namespace kvserve::kernels
