#pragma once

// What device code sees of CUDA, executed by the emulator on the CPU: the keywords, the built-in
// coordinates, block and warp barriers, warp shuffles and the few intrinsics the kernels use.
// Every CUDA thread of a block runs as a fiber; a barrier suspends it until its block (or warp)
// has arrived, so code that forgets a barrier reads stale data here as it would on a GPU.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "cuda_emulator/host_types.h"

#define KVSERVE_CUDA_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Blocks run one after another on one OS thread, so a static is one block's shared memory.
#define __shared__ static

namespace kvserve::cuda_emulator {

// What a thread waits at; a warp's lanes must agree on shuffles and wmma operations.
enum class Collective { kNone, kSyncthreads, kSyncwarp, kShuffle, kWmma };

int LaneId();

// Suspends the calling thread until every thread of its block (kSyncthreads) or every lane of its
// warp (the others) has arrived. Shuffles and wmma operations name their call site: the lanes of
// a warp must all be at the same one.
void Arrive(Collective collective,
            const std::source_location& site = std::source_location::current());

// Lane `lane ^ lane_mask`'s value of this shuffle (within groups of `width` lanes).
uint64_t ShuffleXor(uint64_t bits, int lane_mask, int width, const std::source_location& site);

// The warp's scratch for exchanging wmma operands: two 16x16 tiles.
float* WarpMatrixScratch();

// The block's dynamic shared memory (refilled with NaN bytes before each block).
unsigned char* DynamicSharedMemory();

// Ends the launch with an error naming what the device code did wrong.
[[noreturn]] void Fail(const char* what);

}  // namespace kvserve::cuda_emulator

// The built-in coordinates: plain variables that the emulator sets before it resumes a thread.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

inline void __syncthreads() {
  ::kvserve::cuda_emulator::Arrive(::kvserve::cuda_emulator::Collective::kSyncthreads);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) ::kvserve::cuda_emulator::Fail("__syncwarp: only full masks emulated");
  ::kvserve::cuda_emulator::Arrive(::kvserve::cuda_emulator::Collective::kSyncwarp);
}

// The source location is the emulator's: it tells which shuffle each lane is at.
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32,
                  const std::source_location& site = std::source_location::current()) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t));
  if (mask != 0xffffffffu) ::kvserve::cuda_emulator::Fail("__shfl_xor_sync: only full masks");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = ::kvserve::cuda_emulator::ShuffleXor(bits, lane_mask, width, site);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
// Round-to-nearest products and differences that are never fused into an FMA: ISO C++
// (-std=c++20) does not contract.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }

// CUDA's integer min and max live in the global namespace.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }

// Atomics: the emulated threads of a grid never run at the same time, so a plain
// read-modify-write is atomic; each returns the old value, as CUDA's do.
inline int atomicAdd(int* address, int value) {
  const int old = *address;
  *address = old + value;
  return old;
}
inline unsigned int atomicAdd(unsigned int* address, unsigned int value) {
  const unsigned int old = *address;
  *address = old + value;
  return old;
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  const unsigned long long old = *address;
  *address = old + value;
  return old;
}

// Double-precision products and sums that are never fused.
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
