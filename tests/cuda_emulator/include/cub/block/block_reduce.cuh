#pragma once

// cub::BlockReduce as its contract reads, for emulated blocks: the aggregate is returned to
// thread 0 only (the others get NaN, so a kernel that reads it elsewhere fails its test), and the
// storage may be reused only after a further __syncthreads.

#include <functional>
#include <limits>

#include "cuda_emulator/device_builtins.h"

namespace cub {

template <typename T, int kBlockThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T partial[kBlockThreads];
  };

  explicit BlockReduce(TempStorage& storage) : storage_(storage) {}

  T Sum(T input) { return Reduce(input, std::plus<T>()); }

  template <typename Op>
  T Reduce(T input, Op op) {
    namespace emu = ::kvserve::cuda_emulator;
    if (blockDim.x * blockDim.y * blockDim.z != kBlockThreads) {
      emu::Fail("cub::BlockReduce: block size differs");
    }
    const unsigned linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    storage_.partial[linear] = input;
    __syncthreads();
    if (linear != 0) return std::numeric_limits<T>::quiet_NaN();
    T total = storage_.partial[0];
    for (int i = 1; i < kBlockThreads; ++i) total = op(total, storage_.partial[i]);
    return total;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
