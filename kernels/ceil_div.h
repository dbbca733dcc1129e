#pragma once

#include "kernels/host_device.h"

namespace kvserve {

// ⌈a / b⌉ for a >= 0, b > 0: pages for tokens, tiles for keys, blocks for threads.
template <typename T>
KVSERVE_HOST_DEVICE constexpr T CeilDiv(T a, T b) {
  return (a + b - 1) / b;
}

}  // namespace kvserve
